"""`pytest_test`: a py_test that runs pytest (from the tools venv) on its test files."""

load("@rules_python//python:defs.bzl", "py_test")

def pytest_test(name, srcs, data = [], deps = [], args = [], **kwargs):
    py_test(
        name = name,
        srcs = ["//tests:run_with_tools.py"] + srcs,
        main = "//tests:run_with_tools.py",
        args = [
            "$(location @proteus_py//:tool_python.sh)",
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
        ] + args + ["$(location %s)" % s for s in srcs if not s.endswith("conftest.py")],
        data = data + ["@proteus_py//:tool_python.sh", "@proteus_py//:tool_python"],
        deps = deps,
        python_version = "PY3",
        **kwargs
    )
