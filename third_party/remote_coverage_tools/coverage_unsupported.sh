#!/bin/sh
echo "coverage is not supported in the offline Bazel 4.2.3 build (no @remote_coverage_tools)" >&2
exit 1
