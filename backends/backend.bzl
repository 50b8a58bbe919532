"""`proteus_backend`: everything a backend wheel is, from data. Each backends/<kind>/BUILD.bazel is
one call; the code (native module, engine, package __init__) is shared."""

load("@cc_toolchain_facts//:toolchain.bzl", "CC_TOOLCHAIN")
load("@llvm//:llvm_info.bzl", "LLVM_MAJOR")
load("@proteus_py//:pythons.bzl", "PYTHONS")
load("@proteus_version//:version.bzl", "VERSION")
load("@pybind11_bazel//:build_defs.bzl", "pybind_extension")
load("//backends:facts.bzl", "BACKENDS", "engine_defines")
load("//cc:native.bzl", "manylinux_link")
load("//tools:project.bzl", "BACKEND_CLASSIFIERS", "BACKEND_LICENSE", "PROJECT_URLS", "PYTHON_REQUIRES")
load("//tools:repair.bzl", "repaired_wheel")
load("//tools:wheel.bzl", "proteus_wheel")

# The platform tag the wheels reach: on Linux manylinux_2_28 (glibc 2.28, RHEL 8 and newer: the link
# binds to @manylinux_sysroot, cc/native.bzl), which the repair action enforces and
# //tests:wheel_hygiene checks with `auditwheel show`; on macOS arm64 (--config=macos, not built or
# tested here) the delocated macosx tag.
MANYLINUX_POLICY = "manylinux_2_28_x86_64"
MACOS_POLICY = "macosx_14_0_arm64"

def _by_platform(linux, macos):
    return select({"@platforms//os:macos": macos, "//conditions:default": linux})

def _manifest_impl(ctx):
    out = ctx.actions.declare_file("manifest.json")
    spec = dict(json.decode(ctx.attr.spec), platform = ctx.attr.platform)
    ctx.actions.write(out, json.encode_indent(spec, indent = "  ") + "\n")

    # The same as a Python literal (Starlark's repr of these values is one): the package reads it
    # at start-up without importing json, which costs milliseconds of every first result.
    as_python = ctx.actions.declare_file("_manifest.py")
    ctx.actions.write(as_python, "# Generated: manifest.json as Python.\nMANIFEST = %s\n" % repr(spec))
    return [DefaultInfo(files = depset([out, as_python]))]

_manifest = rule(
    implementation = _manifest_impl,
    attrs = {"spec": attr.string(mandatory = True), "platform": attr.string(mandatory = True)},
)

# buildifier: disable=unnamed-macro
# (One call per backend package, which it fills with that package's fixed targets: :wheel, :manifest,
# :package_init and one extension and wheel per interpreter. The package is the name.)
def proteus_backend(
        kind,
        summary,
        classifiers = [],
        cuda_major = None,
        rocm_version = None,
        exclude_libs = [],
        extra_requires = {}):
    """The wheels of backend `kind`, whose facts are in backends/facts.bzl.

    Args:
      kind: the backend's key in backends/facts.bzl (host, cuda, rocm).
      summary: the distributions' one-line Summary.
      classifiers: Trove classifiers beyond BACKEND_CLASSIFIERS.
      cuda_major: the CUDA major the backend targets (manifest), or None.
      rocm_version: the ROCm version the backend targets (manifest), or None.
      exclude_libs: libraries the repair step must not vendor, beyond the GPU runtime's.
      extra_requires: extras -> requirements, as in the wheel's Provides-Extra.
    """
    facts = BACKENDS[kind]
    variant, distribution, priority = facts.variant, facts.distribution, facts.priority
    runtime_probe = dict(facts.probe, libraries = facts.runtime_libraries) if facts.probe else None
    package = "proteus_backend_" + kind
    _manifest(
        name = "manifest",
        spec = json.encode({
            "id": variant,
            "kind": kind,
            "module": package + "._proteus",
            "distribution": distribution,
            "version": VERSION,
            "llvm_major": LLVM_MAJOR,
            "cuda_major": cuda_major,
            "rocm_version": rocm_version,
            "priority": priority,
            "runtime_probe": runtime_probe,
            # The C++ toolchain the actions were keyed on (tools/bazel, PROTEUS_CC_TOOLCHAIN).
            "build_toolchain": CC_TOOLCHAIN,
        }),
        platform = _by_platform(MANYLINUX_POLICY, MACOS_POLICY),
    )
    native.genrule(
        name = "package_init",
        srcs = ["//backends/common:backend_package.py"],
        outs = ["__init__.py"],
        cmd = "cp $< $@",
    )
    wheels = []
    for py in PYTHONS:
        tag = py["tag"]
        extension = "_proteus" + py["ext_suffix"]  # the file; pybind_extension appends ".so"
        if not extension.endswith(".so"):
            fail("%s: EXT_SUFFIX %r does not end in .so" % (py["executable"], py["ext_suffix"]))
        link = manylinux_link("//cc:python/exports.map")
        pybind_extension(
            name = extension[:-len(".so")],
            srcs = ["//cc:python_module_srcs"],
            additional_linker_inputs = link.additional_linker_inputs,
            linkopts = link.linkopts,
            local_defines = engine_defines(kind),
            # This interpreter's headers first: they win over any the macro adds.
            deps = [
                "@proteus_py//:%s_headers" % tag,
                "//cc:engine_" + kind,
            ] + link.deps,
        )
        proteus_wheel(
            name = "raw_wheel_" + tag,
            distribution = distribution,
            python_tag = tag,
            abi = tag,
            platform = _by_platform("linux_x86_64", "macosx_14_0_arm64"),
            summary = summary,
            description_file = "DESCRIPTION.md",
            classifiers = BACKEND_CLASSIFIERS + classifiers,
            license = BACKEND_LICENSE,
            license_files = ["//:LICENSE", "@third_party_notices//:backend_notices"],
            project_urls = PROJECT_URLS,
            python_requires = PYTHON_REQUIRES,
            requires = ["proteus-python==" + VERSION],
            extra_requires = extra_requires,
            entry_points = {"proteus.backends": ["%s = %s:get_backend" % (kind, package)]},
            files = {
                ":package_init": package,
                ":manifest": package,
                ":" + extension: package,
                "@llvm//:clang_resource_headers": package + "/clang_resource/include=lib/clang/%d/include" % LLVM_MAJOR,
            },
        )
        repaired_wheel(
            name = "wheel_" + tag,
            wheel = ":raw_wheel_" + tag,
            policy = _by_platform(MANYLINUX_POLICY, MACOS_POLICY),
            tool = _by_platform("auditwheel", "delocate"),
            exclude = sorted({lib: None for lib in exclude_libs + facts.runtime_libraries}.keys()),
        )
        wheels.append(":wheel_" + tag)
    native.filegroup(name = "wheel", srcs = wheels)
