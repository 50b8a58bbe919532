"""`proteus_wheel` and `proteus_sdist`: the rules that write every distribution of the project.

Not rules_python's `py_wheel`, and named apart from it so that a BUILD file means what a
rules_python user reads. Where they differ (docs/ARCHITECTURE.md, "Wheel rules"):
- files: `files = {target: "DIR" | "DIR=PREFIX"}` places each target's files in the wheel (at
  DIR/basename, or keeping their path below PREFIX), where py_wheel takes `deps` (a py_package)
  and `strip_path_prefixes`; extension modules and header trees need no py_library around them.
- license_files (PEP 639 License-File, .dist-info/licenses/) and python_requires where py_wheel has
  `license` text and `extra_distinfo_files`; no `stamp` (the version is @proteus_version's, the
  same for every distribution of a build; `--config=release` takes it from git tags) and no
  `requires_file` (requirements are written in the BUILD file).
- The wheel is written by tools/build_wheel.py deterministically (fixed timestamps and order) and
  its name checked with `packaging`; proteus_sdist writes the pure-Python shim's sdist from the
  same spec.
The other attributes (distribution, python_tag, abi, platform, summary, description_file,
classifiers, requires, extra_requires, entry_points, project_urls) mean what py_wheel's do.
"""

load("@proteus_version//:version.bzl", "VERSION")
load("//tools:python_tool.bzl", "PYTHON_TOOL_ATTRS", "run_python_tool")

WheelInfo = provider(
    doc = "A built wheel.",
    fields = ["distribution", "version", "wheel", "spec", "inputs"],
)

def wheel_file_name(distribution, version, python_tag, abi, platform):
    """The PEP 427 file name (name normalised as `packaging.utils.canonicalize_name`, then '-' -> '_')."""
    name = distribution.lower().replace("-", "_").replace(".", "_")
    return "%s-%s-%s-%s-%s.whl" % (name, version, python_tag, abi, platform)

def _proteus_wheel_impl(ctx):
    version = ctx.attr.version or VERSION
    out = ctx.actions.declare_file(wheel_file_name(
        ctx.attr.distribution,
        version,
        ctx.attr.python_tag,
        ctx.attr.abi,
        ctx.attr.platform,
    ))
    files = {}
    inputs = []
    for target, where in ctx.attr.files.items():
        dest_dir, _, keep_below = where.partition("=")
        for f in target.files.to_list():
            if keep_below:  # keep the file's path below `keep_below` (a header tree)
                at = f.short_path.find(keep_below)
                if at < 0:
                    fail("%s is not below %s (files of %s in %s)" % (f.short_path, keep_below, target.label, ctx.label))
                rel = f.short_path[at + len(keep_below):].lstrip("/")
            else:
                rel = f.basename
            dest = (dest_dir.rstrip("/") + "/" + rel).lstrip("/")
            if dest in files:
                fail("two files map to %s in wheel %s" % (dest, ctx.label))
            files[dest] = f.path
            inputs.append(f)
    description = None
    if ctx.file.description_file:
        description = ctx.file.description_file.path
        inputs.append(ctx.file.description_file)
    license_files = {}
    for f in ctx.files.license_files:
        if f.basename in license_files:
            fail("two license files are named %s in wheel %s" % (f.basename, ctx.label))
        license_files[f.basename] = f.path
        inputs.append(f)
    spec = ctx.actions.declare_file(ctx.label.name + ".wheel.json")
    ctx.actions.write(spec, json.encode_indent({
        "distribution": ctx.attr.distribution,
        "version": version,
        "python_tag": ctx.attr.python_tag,
        "abi": ctx.attr.abi,
        "platform": ctx.attr.platform,
        "summary": ctx.attr.summary,
        "description_file": description,
        "license": ctx.attr.license,
        "license_files": license_files,
        "classifiers": ctx.attr.classifiers,
        "requires_python": ctx.attr.python_requires,
        "requires": ctx.attr.requires,
        "extra_requires": ctx.attr.extra_requires,
        "project_urls": ctx.attr.project_urls,
        "entry_points": ctx.attr.entry_points,
        "files": files,
    }))
    run_python_tool(
        ctx,
        script = ctx.file._builder,
        arguments = [spec.path, out.path],
        inputs = inputs + [spec],
        outputs = [out],
        mnemonic = "PyWheel",
        progress_message = "Assembling wheel %s" % out.basename,
    )
    return [
        DefaultInfo(files = depset([out])),
        WheelInfo(distribution = ctx.attr.distribution, version = version, wheel = out, spec = spec, inputs = inputs),
    ]

proteus_wheel = rule(
    implementation = _proteus_wheel_impl,
    attrs = dict(PYTHON_TOOL_ATTRS, **{
        "distribution": attr.string(mandatory = True),
        "version": attr.string(doc = "Default: the build's version (@proteus_version)."),
        "python_tag": attr.string(default = "py3"),
        "abi": attr.string(default = "none"),
        "platform": attr.string(default = "any"),
        "summary": attr.string(mandatory = True),
        "description_file": attr.label(allow_single_file = True),
        "license": attr.string(default = "Apache-2.0", doc = "SPDX license expression (License-Expression)"),
        "license_files": attr.label_list(
            allow_files = True,
            doc = "license and notice texts, shipped in .dist-info/licenses/ (License-File)",
        ),
        "classifiers": attr.string_list(doc = "Trove classifiers"),
        "python_requires": attr.string(default = ">=3.10"),
        "requires": attr.string_list(),
        "extra_requires": attr.string_list_dict(),
        "project_urls": attr.string_dict(),
        "entry_points": attr.string_list_dict(doc = "group -> ['name = module:attr', ...]"),
        "files": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "target -> 'DIR' (files go to DIR/basename) or 'DIR=PREFIX' (paths below PREFIX are kept)",
        ),
        "_builder": attr.label(default = "//tools:build_wheel.py", allow_single_file = True),
    }),
)

def _proteus_sdist_impl(ctx):
    info = ctx.attr.wheel[WheelInfo]
    name = info.distribution.lower().replace("-", "_").replace(".", "_")
    out = ctx.actions.declare_file("%s-%s.tar.gz" % (name, info.version))
    run_python_tool(
        ctx,
        script = ctx.file._builder,
        arguments = [info.spec.path, out.path],
        inputs = info.inputs + [info.spec, ctx.file._wheel_builder],
        outputs = [out],
        mnemonic = "PySdist",
        progress_message = "Assembling sdist %s" % out.basename,
    )
    return [DefaultInfo(files = depset([out]))]

proteus_sdist = rule(
    implementation = _proteus_sdist_impl,
    doc = "The sdist of a pure-Python proteus_wheel: same spec, pyproject.toml for setuptools.",
    attrs = dict(PYTHON_TOOL_ATTRS, **{
        "wheel": attr.label(mandatory = True, providers = [WheelInfo]),
        "_builder": attr.label(default = "//tools:build_sdist.py", allow_single_file = True),
        "_wheel_builder": attr.label(default = "//tools:build_wheel.py", allow_single_file = True),
    }),
)
