"""Offline stand-in for @rules_python//python:defs.bzl: forwards to Bazel's native Python rules."""

# buildifier: disable=native-py
py_binary = native.py_binary

# buildifier: disable=native-py
py_library = native.py_library

# buildifier: disable=native-py
py_runtime = native.py_runtime

# buildifier: disable=native-py
py_test = native.py_test
