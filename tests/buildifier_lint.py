"""buildifier 8.2.1 (@buildifier) finds nothing in the project's BUILD/.bzl files, nor in the BUILD
files the toolchain repository rules generate: formatted, lint-clean, every rule loaded (its
native-* warnings are Bazel 9's removed globals), waivers only with `# buildifier: disable=`."""

import glob
import os
import subprocess

from tests.bazel_files import GENERATED, tracked_bazel_files

BUILDIFIER = os.path.abspath(glob.glob("**/buildifier/buildifier", recursive=True)[0])


def findings(files, formatting=True):
    """buildifier's findings, one a line ('FILE # reformat' for formatting, else 'FILE:LINE: warning: ...')."""
    res = subprocess.run([BUILDIFIER, "--mode=check", "--lint=warn", "--format=text"] + files,
                         capture_output=True, text=True)
    lines = [line for line in (res.stdout + res.stderr).splitlines() if line.strip()]
    return [line for line in lines if formatting or not line.endswith("# reformat")]


def test_the_tree_is_formatted_and_lint_clean():
    files = tracked_bazel_files()
    assert len(files) > 20
    assert findings(files) == []


def test_generated_build_files_are_clean():
    assert GENERATED, "no generated BUILD files among the test's data"
    # Lint only: they are written by repository rules, not by hand (their layout is not checked).
    assert findings(GENERATED, formatting=False) == []


def test_buildifier_catches_an_unloaded_rule_and_bad_format(tmp_path):
    bad = tmp_path / "BUILD.bazel"
    bad.write_text('cc_library(name="x",srcs=["a.cc"])\n')
    found = "\n".join(findings([str(bad)]))
    assert "native-cc" in found and "reformat" in found
