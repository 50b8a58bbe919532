"""Offline stand-in for @rules_python//python:py_runtime.bzl: Bazel 4.2.3's native py_runtime."""

# buildifier: disable=native-py
py_runtime = native.py_runtime
