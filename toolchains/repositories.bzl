"""The project's toolchain repositories: one list, used by WORKSPACE.bazel and MODULE.bazel alike."""

load("//toolchains:actionlint.bzl", "actionlint_repository")
load("//toolchains:buildifier.bzl", "buildifier_repository")
load("//toolchains:cc_toolchain.bzl", "cc_toolchain_facts_repository")
load("//toolchains:cuda.bzl", "cuda_repository")
load("//toolchains:llvm.bzl", "llvm_repository")
load("//toolchains:manylinux.bzl", "manylinux_sysroot_repository")
load("//toolchains:notices.bzl", "third_party_notices_repository")
load("//toolchains:python.bzl", "python_repository")
load("//toolchains:version.bzl", "version_repository")

def proteus_toolchains():
    """Declares every toolchain repository of the build (WORKSPACE.bazel, toolchains/extensions.bzl)."""
    python_repository(name = "proteus_py")
    llvm_repository(name = "llvm")
    manylinux_sysroot_repository(name = "manylinux_sysroot")
    third_party_notices_repository(name = "third_party_notices")
    version_repository(name = "proteus_version")
    actionlint_repository(name = "actionlint")
    buildifier_repository(name = "buildifier")
    cc_toolchain_facts_repository(name = "cc_toolchain_facts")
    cuda_repository(name = "cuda")
