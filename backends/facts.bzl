"""Each backend's facts, stated once (docs/ARCHITECTURE.md 5): its distribution, variant and
priority (the manifest and wheel), the engine targets it links (cc/BUILD.bazel), and the GPU
runtime library it opens, in the order tried (the shim's runtime probe and the engine's dlopen
both take this list), with the probe's entry points."""

BACKENDS = {
    "host": struct(
        distribution = "proteus-python-backend-host-llvm22",
        variant = "host_llvm22",
        priority = 10,
        targets = [],
        runtime_libraries = [],
        probe = None,
    ),
    "cuda": struct(
        distribution = "proteus-python-backend-cuda12-llvm22",
        variant = "cuda12_llvm22",
        priority = 30,
        targets = ["cuda"],
        runtime_libraries = ["libcuda.so.1"],
        probe = {"init": "cuInit", "device_count": "cuDeviceGetCount"},
    ),
    "rocm": struct(
        distribution = "proteus-python-backend-rocm72",
        variant = "rocm72",
        priority = 20,
        targets = ["hip"],
        runtime_libraries = ["libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so"],
        probe = {"device_count": "hipGetDeviceCount"},
    ),
}

# The GPU target -> the backend that ships it (the engine names its wheel in messages).
BACKEND_OF_TARGET = {target: kind for kind, facts in BACKENDS.items() for target in facts.targets}

def c_string(text):
    """A C string literal as a define's value: the quotes escaped for Bazel's tokenizer of defines."""
    return '\\"%s\\"' % text

def c_string_list(strings):
    """A C initializer-list body of string literals for a define: "a","b" (no spaces: one token)."""
    return ",".join([c_string(s) for s in strings])

def target_defines(target):
    """The defines of an engine target library.

    Args:
      target: a device target ("cuda", "hip").

    Returns:
      The GPU runtime libraries it opens, in the order the probe tries them, and the distribution
      that ships it (named in its messages).
    """
    facts = BACKENDS[BACKEND_OF_TARGET[target]]
    return [
        "PROTEUS_RUNTIME_LIBRARIES=" + c_string_list(facts.runtime_libraries),
        "PROTEUS_TARGET_DISTRIBUTION=" + c_string(facts.distribution),
    ]

def engine_defines(kind):
    """The defines the Python module of a backend is compiled with.

    Args:
      kind: the backend's key in BACKENDS.

    Returns:
      Its distribution, its GPU targets, and the distributions that ship the others (for the
      error that names the wheel to install).
    """
    facts = BACKENDS[kind]
    defines = ["PROTEUS_DISTRIBUTION=" + c_string(facts.distribution)]
    defines += ["PROTEUS_HAS_%s=1" % target.upper() for target in facts.targets]
    defines += ["PROTEUS_%s_DISTRIBUTION=%s" % (target.upper(), c_string(BACKENDS[owner].distribution)) for target, owner in BACKEND_OF_TARGET.items()]
    return defines
