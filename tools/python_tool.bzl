"""Running the build's Python tools (tools/*.py) in the pinned tools venv of @proteus_py."""

PYTHON_TOOL_ATTRS = {
    "_tool_python": attr.label(default = "@proteus_py//:tool_python", allow_files = True, cfg = "exec"),
}

def run_python_tool(ctx, script, arguments, inputs, outputs, mnemonic, progress_message):
    """Runs `script` (a File) with the tools venv's interpreter as one action."""
    launcher = [f for f in ctx.files._tool_python if f.basename == "tool_python.sh"][0]
    ctx.actions.run(
        executable = launcher,
        arguments = [script.path] + arguments,
        inputs = depset([script] + inputs + ctx.files._tool_python),
        outputs = outputs,
        mnemonic = mnemonic,
        progress_message = progress_message,
        env = {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "315532800"},
    )
