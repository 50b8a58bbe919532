"""Linking what this project ships or runs as shipped: `manylinux_link` and `manylinux_cc_binary`.

On Linux every such link binds to @manylinux_sysroot (glibc 2.28 link stubs, the GCC runtime linked
statically) with lld, keeps nothing it does not use, strips everything and hides everything but the
names `exports_map` lists; cc/glibc_compat.c supplies what glibc 2.28 lacks. The result runs on any
glibc >= 2.28 (docs/ARCHITECTURE.md, "manylinux_2_28"). Every link also reads TOOLCHAIN_FACTS, so
its action key changes with the C++ toolchain (docs/ARCHITECTURE.md, "The C++ toolchain in every key").
"""

load("@rules_cc//cc:defs.bzl", "cc_binary")

_SYSROOT = Label("@manylinux_sysroot//:files")

# The exact package versions and tool digests tools/bazel states (toolchains/cc_toolchain.bzl).
# Bazel 4.2.3's link actions take no --action_env: this file, a link input, keys them instead.
TOOLCHAIN_FACTS = "@cc_toolchain_facts//:toolchain_facts.txt"

def manylinux_link(exports_map = None):
    """The cc_binary attributes of a manylinux_2_28 link, for a cc_binary or a pybind_extension.

    Args:
      exports_map: a linker version script naming what a shared object exports (all else hidden).

    Returns:
      A struct of `linkopts`, `additional_linker_inputs` and `deps` (add them to the target's own).
    """
    linux = [
        "--sysroot=%s/root" % _SYSROOT.workspace_root,
        "-fuse-ld=lld",
        "-Wl,--gc-sections",
        "-Wl,--icf=all",
        "-Wl,--exclude-libs,ALL",
        "-Wl,--as-needed",
        "-Wl,--strip-all",
        "-lpthread",  # glibc < 2.34 keeps the thread functions in libpthread
        # The build machine's libgcc_s.so.1 needs a newer glibc than the stubs; the one that runs is
        # the target system's own (every manylinux system has one), so its needs are not ours.
        "-Wl,--allow-shlib-undefined",
    ]
    inputs = [str(_SYSROOT), TOOLCHAIN_FACTS]
    if exports_map:
        linux.append("-Wl,--version-script=$(location %s)" % exports_map)
        inputs.append(exports_map)
    return struct(
        linkopts = select({
            # macOS arm64 (--config=macos; not built or tested here): ld64's equivalents.
            "@platforms//os:macos": ["-Wl,-dead_strip", "-Wl,-x"],
            "//conditions:default": linux,
        }),
        additional_linker_inputs = inputs,
        deps = select({
            "@platforms//os:macos": [],
            "//conditions:default": ["//cc:glibc_compat"],
        }),
    )

def manylinux_cc_binary(name, deps, exports_map = None, linkshared = False, **kwargs):
    """A cc_binary (an executable, or with linkshared a shared object) linked for manylinux_2_28.

    Args:
      name: the target (and output) name.
      deps: cc_library targets linked in (glibc_compat is added on Linux).
      exports_map: a linker version script naming what the shared object exports (all else hidden).
      linkshared: link a shared object instead of an executable.
      **kwargs: the other cc_binary attributes (srcs, copts, local_defines, ...).
    """
    link = manylinux_link(exports_map)
    cc_binary(
        name = name,
        additional_linker_inputs = link.additional_linker_inputs,
        linkopts = link.linkopts,
        linkshared = linkshared,
        deps = deps + link.deps,
        **kwargs
    )
