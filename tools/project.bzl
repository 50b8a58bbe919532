"""Metadata every distribution of the family shares (tools/wheel.bzl attributes)."""

PROJECT_URLS = {
    "Source": "https://github.com/proteus-python/proteus-python",
    "Issues": "https://github.com/proteus-python/proteus-python/issues",
    "Documentation": "https://github.com/proteus-python/proteus-python#readme",
    "Wheel index": "https://proteus-python.github.io/proteus-python/wheels/simple/",
}

# Requires-Python of every distribution, and the CPython versions the release builds wheels for
# (--config=matrix; README: why not 3.14 here).
PYTHON_REQUIRES = ">=3.10"
PYTHON_VERSIONS = ["3.10", "3.11", "3.12", "3.13"]

CLASSIFIERS = [
    "Development Status :: 3 - Alpha",
    "Intended Audience :: Developers",
    "Intended Audience :: Science/Research",
    "Programming Language :: C++",
    "Programming Language :: Python :: 3",
    "Programming Language :: Python :: 3 :: Only",
] + ["Programming Language :: Python :: " + v for v in PYTHON_VERSIONS] + [
    "Programming Language :: Python :: Implementation :: CPython",
    "Topic :: Scientific/Engineering",
    "Topic :: Software Development :: Code Generators",
    "Topic :: Software Development :: Compilers",
    "Typing :: Typed",
]

# The backends: native code for Linux x86-64 (manylinux_2_28).
BACKEND_CLASSIFIERS = CLASSIFIERS + [
    "Operating System :: POSIX :: Linux",
]

# What a backend wheel contains besides our own code (toolchains/notices.bzl has the texts):
# LLVM/Clang/LLD and clang's headers, pybind11, zstd, zlib, GCC's runtime, glibc's libc_nonshared.
BACKEND_LICENSE = " AND ".join([
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-3-Clause",
    "(BSD-3-Clause OR GPL-2.0-only)",
    "Zlib",
    "GPL-3.0-or-later WITH GCC-exception-3.1",
    "LGPL-2.1-or-later",
])
