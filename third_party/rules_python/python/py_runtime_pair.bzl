"""Offline stand-in for @rules_python//python:py_runtime_pair.bzl: Bazel 4.2.3's own rule."""

load("@bazel_tools//tools/python:toolchain.bzl", _py_runtime_pair = "py_runtime_pair")

py_runtime_pair = _py_runtime_pair
