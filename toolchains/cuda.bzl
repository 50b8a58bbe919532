"""Repository rule @cuda: the CUDA 12 headers the build compiles the cuda target against.

The root is `PROTEUS_CUDA_HOME`, `CUDA_HOME` or `CUDA_PATH` when set (its include/cuda.h must say
CUDA 12, else the build fails naming the variable), else NVIDIA's CUDA 12 runtime wheel from PyPI,
fetched by pip at the version and hashes pinned in requirements-cuda.txt. Only headers are used:
nothing of CUDA is linked into any wheel (the driver is opened with dlopen at run time, the
toolkit is found at run time; see cc/cuda_target.cc).
"""

load("//toolchains:fetch.bzl", "pinned_wheel")

CUDA_MAJOR = 12

def _fail(msg):
    fail("\n[proteus toolchain: CUDA %d] %s" % (CUDA_MAJOR, msg))

def _cuda_major(ctx, include):
    header = ctx.path(include + "/cuda.h")
    if not header.exists:
        return 0
    for line in ctx.read(header).splitlines():
        if line.startswith("#define CUDA_VERSION "):
            return int(line.split(" ")[2].strip()) // 1000
    return 0

def _cuda_repo_impl(ctx):
    found = False
    for var in ["PROTEUS_CUDA_HOME", "CUDA_HOME", "CUDA_PATH"]:
        root = ctx.os.environ.get(var, "")
        if found or not root:
            continue
        major = _cuda_major(ctx, root + "/include")
        if major != CUDA_MAJOR:
            _fail("%s=%s is %s; set it to a CUDA %d toolkit, or unset it to use NVIDIA's pip wheel." %
                  (var, root, ("CUDA %d" % major) if major else "not a CUDA toolkit (no include/cuda.h)", CUDA_MAJOR))
        ctx.symlink(root + "/include", "include")
        found = True
    if not found:
        python = ctx.path(Label("@proteus_py//:tool_python.sh"))
        req = ctx.path(Label("//toolchains:requirements-cuda.txt"))
        error = pinned_wheel(ctx, python, req, "wheel")
        if error:
            _fail("pip download -r toolchains/requirements-cuda.txt failed (set PROTEUS_CUDA_HOME to a CUDA %d " % CUDA_MAJOR +
                  "toolkit to build without it):\n" + error)
        ctx.symlink("wheel/nvidia/cuda_runtime/include", "include")
        if _cuda_major(ctx, "include") != CUDA_MAJOR:
            _fail("the pinned nvidia-cuda-runtime-cu12 wheel does not hold CUDA %d headers" % CUDA_MAJOR)
    ctx.file("BUILD.bazel", """load("@rules_cc//cc:defs.bzl", "cc_library")

package(default_visibility = ["//visibility:public"])

exports_files(["BUILD.bazel"])

cc_library(
    name = "headers",
    hdrs = ["include/cuda.h"],
    includes = ["include"],
)
""")

cuda_repository = repository_rule(
    implementation = _cuda_repo_impl,
    environ = ["PROTEUS_CUDA_HOME", "CUDA_HOME", "CUDA_PATH"],
)
