"""Repository rule @buildifier: buildifier 8.2.1 (npm package `@bazel/buildifier`), pinned by hash.

The npm package carries the prebuilt binaries of every platform, so it works where GitHub's
release downloads cannot be reached. //tests:buildifier_lint runs it on every BUILD/.bzl file.
"""

load("//toolchains:fetch.bzl", "npm_package")

_VERSION = "8.2.1"
_SHA256 = "b96ea9b13003036c801f52bee6f9b0314738f8432e5cb9d814c89f59292604ee"

# (os name as Bazel reports it, arch) -> the binary in the package.
_BINARIES = {
    ("linux", "amd64"): "buildifier-linux_amd64",
    ("linux", "x86_64"): "buildifier-linux_amd64",
    ("linux", "aarch64"): "buildifier-linux_arm64",
    ("mac os x", "aarch64"): "buildifier-darwin_arm64",
    ("mac os x", "x86_64"): "buildifier-darwin_amd64",
}

def _buildifier_impl(ctx):
    npm_package(ctx, "@bazel/buildifier", _VERSION, _SHA256)
    arch = ctx.execute(["uname", "-m"]).stdout.strip()  # repository_os.arch is newer than Bazel 4
    binary = _BINARIES.get((ctx.os.name, arch))
    if binary == None:
        fail("\n[proteus toolchain: buildifier] no buildifier %s binary for %s/%s in the npm package." %
             (_VERSION, ctx.os.name, arch))
    ctx.symlink(binary, "buildifier")
    ctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])

exports_files([
    "BUILD.bazel",
    "buildifier",
])
""")

buildifier_repository = repository_rule(implementation = _buildifier_impl)
