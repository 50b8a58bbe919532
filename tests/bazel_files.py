"""The Bazel files the build-file tests read: the checkout's tracked BUILD/.bzl files (through git,
from the real path of the README.md data file) and the BUILD files the toolchain repository rules
generate (data files under external/)."""

import glob
import os
import subprocess

ROOT = os.path.dirname(os.path.realpath("README.md"))
GENERATED = sorted({os.path.realpath(p) for p in glob.glob("external/*/BUILD.bazel") + glob.glob("../*/BUILD.bazel")})


def tracked(*patterns):
    out = subprocess.run(["git", "-C", ROOT, "ls-files", *patterns],
                         capture_output=True, text=True, check=True).stdout.split()
    return [os.path.join(ROOT, f) for f in out if os.path.exists(os.path.join(ROOT, f))]


def tracked_bazel_files():
    return tracked("*.bazel", "*.bzl", "BUILD", "*/BUILD")
