"""Offline stand-in for pybind11_bazel's `@pybind11_bazel//:build_defs.bzl` (third_party/README.md).

`pybind_extension` has the real macro's name, attributes and outputs: a shared-object cc_binary
`<name>.so` compiled with exceptions and hidden visibility and linked -Bsymbolic, plus an alias
`<name>`. Only the dependency it adds differs: here pybind11's headers come from @proteus_py (the
pybind11 wheel the tools venv installs), where the real macro adds `@pybind11//:pybind11` and
rules_python's `current_py_cc_headers`. Python's headers are the caller's deps, so they come first
in the include path under either.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")

PYBIND_COPTS = ["-fexceptions"]

PYBIND_FEATURES = [
    "-use_header_modules",  # pybind11 is not module-clean
    "-parse_headers",
]

PYBIND_DEPS = ["@proteus_py//:pybind11"]

def pybind_extension(
        name,
        copts = [],
        features = [],
        linkopts = [],
        tags = [],
        deps = [],
        **kwargs):
    """A Python extension module `<name>.so` built with pybind11.

    Args:
      name: the module's file name without `.so` (e.g. `_ext.cpython-311-x86_64-linux-gnu`).
      copts: extra compile options.
      features: extra features.
      linkopts: extra link options.
      tags: tags of the targets.
      deps: cc_library targets, the Python headers among them.
      **kwargs: the other cc_binary attributes (srcs, local_defines, additional_linker_inputs, ...).
    """
    cc_binary(
        name = name + ".so",
        copts = copts + PYBIND_COPTS + ["-fvisibility=hidden"],
        features = features + PYBIND_FEATURES,
        linkopts = linkopts + select({
            "@platforms//os:macos": ["-undefined", "dynamic_lookup"],
            "//conditions:default": ["-Wl,-Bsymbolic"],
        }),
        linkshared = 1,
        tags = tags,
        deps = deps + PYBIND_DEPS,
        **kwargs
    )
    native.alias(
        name = name,
        actual = name + ".so",
        tags = tags,
    )
