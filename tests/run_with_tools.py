"""py_test entry point: re-runs the given arguments with the pinned tools interpreter.

usage (from BUILD args): run_with_tools.py TOOL_PYTHON_LAUNCHER ARGS...
Bazel's own Python runs this file; the tests themselves need pytest, packaging, twine... which
live in the tools venv of @proteus_py (toolchains/requirements-tools.txt).
"""

import os
import sys

launcher, *args = sys.argv[1:]
launcher = os.path.abspath(launcher)
# The in-tree packages (proteus, generated _version.py) are at the runfiles root of this workspace.
env = dict(os.environ, PYTHONPATH=os.getcwd(), PYTHONDONTWRITEBYTECODE="1")
os.execve(launcher, [launcher] + args, env)
