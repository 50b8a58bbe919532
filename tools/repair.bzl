"""`repaired_wheel`: auditwheel repair (Linux) or delocate (macOS) as its own, cacheable Bazel action.

Inputs are the raw wheel and the policy (the manylinux tag to reach); the output name is known at
analysis time because the tag is. The action searches no library path of the machine for
libraries to vendor (LD_LIBRARY_PATH is empty and nothing outside the wheel may be grafted), GPU
driver libraries are excluded, and timestamps come from SOURCE_DATE_EPOCH.
"""

load("//tools:python_tool.bzl", "PYTHON_TOOL_ATTRS", "run_python_tool")
load("//tools:wheel.bzl", "WheelInfo")

def _repaired_wheel_impl(ctx):
    raw = ctx.attr.wheel[WheelInfo]

    # name-version-py-abi-linux_x86_64.whl -> ...-manylinux_2_NN_x86_64.whl
    stem = raw.wheel.basename[:-len(".whl")]
    parts = stem.split("-")
    out = ctx.actions.declare_file("-".join(parts[:-1] + [ctx.attr.policy]) + ".whl")
    args = [ctx.attr.tool, raw.wheel.path, out.path, ctx.attr.policy] + ["--exclude=" + e for e in ctx.attr.exclude]
    run_python_tool(
        ctx,
        script = ctx.file._repair,
        arguments = args,
        inputs = [raw.wheel],
        outputs = [out],
        mnemonic = "AuditwheelRepair",
        progress_message = "%s %s -> %s" % (ctx.attr.tool, raw.wheel.basename, ctx.attr.policy),
    )
    return [
        DefaultInfo(files = depset([out])),
        WheelInfo(distribution = raw.distribution, version = raw.version, wheel = out),
    ]

repaired_wheel = rule(
    implementation = _repaired_wheel_impl,
    attrs = dict(PYTHON_TOOL_ATTRS, **{
        "wheel": attr.label(mandatory = True, providers = [WheelInfo]),
        "policy": attr.string(mandatory = True, doc = "the platform tag to reach, e.g. manylinux_2_28_x86_64"),
        "tool": attr.string(default = "auditwheel", values = ["auditwheel", "delocate"]),
        "exclude": attr.string_list(doc = "sonames never vendored (GPU drivers)"),
        "_repair": attr.label(default = "//tools:repair_wheel.py", allow_single_file = True),
    }),
)
