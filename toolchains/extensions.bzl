"""Bazel 7+ (bzlmod): the same toolchain repositories as WORKSPACE.bazel, through a module extension."""

load("//toolchains:repositories.bzl", "proteus_toolchains")

def _toolchains_impl(_module_ctx):
    proteus_toolchains()

toolchains = module_extension(implementation = _toolchains_impl)
