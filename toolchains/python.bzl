"""Repository rule @proteus_py: the interpreters we build for, pybind11, and the build's Python tools.

- Interpreters: `PROTEUS_PYTHONS` (comma-separated commands or paths, e.g. "python3.10,python3.11"),
  default `python3`; `all` means every version of PYTHON_VERSIONS in tools/project.bzl (`--config=matrix`). Each one gives a `cpXY_headers` cc_library and an entry in `pythons.bzl`.
- Tools: one venv made with `PROTEUS_TOOLS_PYTHON` (default `python3`), filled by pip from `requirements-tools.txt`
  with `--require-hashes` (pybind11, packaging, wheel, setuptools-scm, auditwheel, twine, ...).
  Build actions run `@proteus_py//:tool_python`.
- Test wheelhouse: the wheels of `requirements-test.txt`, hash-checked, for the clean venvs of the
  installed-wheel tests (`pip install --no-index --find-links`).
"""

load("//tools:project.bzl", "PYTHON_VERSIONS")

_PROBE = """
import json, sys, sysconfig
print(json.dumps({
    "version": "%d.%d" % sys.version_info[:2],
    "tag": "cp%d%d" % sys.version_info[:2],
    "include": sysconfig.get_paths()["include"],
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    "executable": sys.executable,
    "implementation": sys.implementation.name,
}))
"""

def _fail(msg):
    fail("\n[proteus toolchain: Python] " + msg)

def _run(ctx, args, what, env = None, timeout = 1200):
    res = ctx.execute(args, environment = env or {}, timeout = timeout, quiet = True)
    if res.return_code != 0:
        _fail("%s failed (exit %d):\n%s\n%s" % (what, res.return_code, res.stdout[-4000:], res.stderr[-4000:]))
    return res.stdout

def _pyenv_interpreter(ctx, name):
    """pythonX.Y from pyenv's installed versions (its shims only run the globally selected ones)."""
    root = ctx.os.environ.get("PYENV_ROOT") or (ctx.os.environ.get("HOME", "") + "/.pyenv")
    versions = ctx.path(root + "/versions")
    if not name.startswith("python3.") or not versions.exists:
        return None
    wanted = name[len("python"):] + "."
    for v in sorted([str(p.basename) for p in versions.readdir()], reverse = True):
        candidate = ctx.path("%s/%s/bin/%s" % (versions, v, name))
        if v.startswith(wanted) and candidate.exists:
            return candidate
    return None

def _python_repo_impl(ctx):
    requested = ctx.os.environ.get("PROTEUS_PYTHONS", "python3")
    if requested == "all":
        requested = ",".join(["python" + v for v in PYTHON_VERSIONS])
    pythons = []
    for name in [n.strip() for n in requested.split(",") if n.strip()]:
        exe = ctx.path(name) if "/" in name else (_pyenv_interpreter(ctx, name) or ctx.which(name))
        if exe == None or not exe.exists:
            _fail("PROTEUS_PYTHONS names %r, which is not an executable on PATH. Set PROTEUS_PYTHONS " % name +
                  "to a comma-separated list of CPython interpreters (e.g. python3.11,python3.12).")
        info = json.decode(_run(ctx, [exe, "-c", _PROBE], "probing %s" % name))
        if info["implementation"] != "cpython":
            _fail("PROTEUS_PYTHONS names %s, which is %s; only CPython is supported." % (name, info["implementation"]))
        ctx.symlink(info["include"], info["tag"] + "/include")
        pythons.append(info)
    if not pythons:
        _fail("PROTEUS_PYTHONS is empty; name at least one interpreter.")

    # The tools venv, made with the build's own interpreter (PROTEUS_TOOLS_PYTHON, default python3;
    # the pins are for it), whatever the target interpreters are.
    tools_name = ctx.os.environ.get("PROTEUS_TOOLS_PYTHON", "python3")
    tools_exe = ctx.path(tools_name) if "/" in tools_name else ctx.which(tools_name)
    if tools_exe == None:
        _fail("PROTEUS_TOOLS_PYTHON names %r, which is not on PATH." % tools_name)
    tools_info = json.decode(_run(ctx, [tools_exe, "-c", _PROBE], "probing %s" % tools_name))
    tools_req = ctx.path(Label("//toolchains:requirements-tools.txt"))
    test_req = ctx.path(Label("//toolchains:requirements-test.txt"))
    _run(ctx, [tools_info["executable"], "-m", "venv", "--clear", "tools_venv"], "creating the tools venv")
    pip_env = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    _run(ctx, [
        "tools_venv/bin/python",
        "-m",
        "pip",
        "install",
        "-q",
        "--require-hashes",
        "--no-deps",
        "-r",
        tools_req,
    ], "pip install -r toolchains/requirements-tools.txt", pip_env)

    # One wheelhouse for the installed-wheel test venvs of every interpreter.
    for info in pythons:
        _run(
            ctx,
            [
                "tools_venv/bin/python",
                "-m",
                "pip",
                "download",
                "-q",
                "--require-hashes",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                info["version"],
                "--implementation",
                "cp",
                "--dest",
                "test_wheelhouse",
                "-r",
                test_req,
            ],
            "pip download -r toolchains/requirements-test.txt for Python " + info["version"],
            pip_env,
        )

    # Resolves its own symlink (sandbox, runfiles) so that no absolute path enters an action key.
    ctx.file(
        "tool_python.sh",
        "#!/bin/sh\nexec \"$(dirname \"$(readlink -f \"$0\")\")/tools_venv/bin/python\" \"$@\"\n",
        executable = True,
    )
    pybind_inc = _run(
        ctx,
        ["tools_venv/bin/python", "-c", "import pybind11; print(pybind11.get_include())"],
        "locating pybind11 headers",
    ).strip()
    ctx.symlink(pybind_inc, "pybind11_include")

    build = [
        'load("@rules_cc//cc:defs.bzl", "cc_library")',
        'load("@rules_python//python:py_runtime.bzl", "py_runtime")',
        'load("@rules_python//python:py_runtime_pair.bzl", "py_runtime_pair")',
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
        'exports_files([\n    "BUILD.bazel",\n    "tool_python.sh",\n])',
        "",
    ]
    for info in pythons:
        build.append("""cc_library(
    name = "{tag}_headers",
    hdrs = glob(["{tag}/include/**/*.h"]),
    includes = ["{tag}/include"],
)
""".format(tag = info["tag"]))
    build.append("""cc_library(
    name = "pybind11",
    hdrs = glob(["pybind11_include/**/*.h"]),
    includes = ["pybind11_include"],
)

# The build's Python tools (wheel assembly, repair, checks): a launcher for the tools venv. The venv's
# files are not action inputs; the pinned requirements stand for them in every action key.
filegroup(
    name = "tool_python",
    srcs = ["tool_python.sh", "@//toolchains:requirements-tools.txt"],
)

# Bazel's own py_binary/py_test stubs run with the tools interpreter (not whatever `python` is on PATH).
py_runtime(
    name = "py3_runtime",
    interpreter_path = "{first}",
    python_version = "PY3",
    stub_shebang = "#!{first}",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":py3_runtime",
)

toolchain(
    name = "python_toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@rules_python//python:toolchain_type",
)

filegroup(
    name = "test_wheelhouse",
    srcs = glob(["test_wheelhouse/*.whl"]),
)
""".replace("{first}", tools_info["executable"]))
    ctx.file("BUILD.bazel", "\n".join(build))
    ctx.file("pythons.bzl", "# Generated by @proteus_py: the interpreters this build targets.\nPYTHONS = %s\n" %
                            json.encode_indent([{k: p[k] for k in ("version", "tag", "ext_suffix", "executable")} for p in pythons]))

python_repository = repository_rule(
    implementation = _python_repo_impl,
    environ = ["PROTEUS_PYTHONS", "PROTEUS_TOOLS_PYTHON", "PATH", "PYENV_ROOT"],
    attrs = {},
)
