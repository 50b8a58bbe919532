"""The CUDA 12 backend installed with the shim and the host backend (and NVIDIA's CUDA 12 toolkit
wheels, its [toolkit] extra). CPU-only checks run everywhere; launches need a GPU and skip without."""

import ctypes
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

# This process uses the cuda backend (selection alone would pick host where there is no GPU);
# subprocesses start without the override unless a test passes it.
os.environ["PROTEUS_BACKEND_KIND"] = "cuda"
import proteus  # noqa: E402

SAXPY = r'''
extern "C" __global__ void saxpy(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
extern "C" __global__ void write_int(int* out, int value) { *out = value; }
'''
ARGS = [proteus.i32, proteus.f32, proteus.ptr, proteus.ptr]
EM_CUDA = 190


def gpu_present():
    """An independent probe (not the backend's is_runtime_compatible, which these tests check)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
        count = ctypes.c_int(0)
        return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except OSError:
        return False


needs_gpu = pytest.mark.skipif(not gpu_present(), reason="no NVIDIA driver with a CUDA device on this machine")


def run_python(code, **env):
    base = {k: v for k, v in os.environ.items() if k != "PROTEUS_BACKEND_KIND"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(base, **env))


@pytest.fixture(scope="module")
def cuda():
    assert proteus.active_backend == "cuda"
    return proteus


def test_selection_with_both_backends():
    res = run_python("import proteus; print(proteus.available_backends(), proteus.active_backend)")
    expected = "cuda" if gpu_present() else "host"
    assert res.stdout.split("] ")[1].strip() == expected, res.stdout + res.stderr
    assert "'cuda'" in res.stdout and "'host'" in res.stdout
    forced = run_python("import proteus; print(proteus.active_backend, proteus.active_backend_variant)",
                        PROTEUS_BACKEND_KIND="cuda")
    assert forced.stdout.split() == ["cuda", "cuda12_llvm22"], forced.stdout + forced.stderr


def test_manifest_and_wheel_layout(cuda):
    import proteus_backend_cuda as pkg

    here = pathlib.Path(pkg.__file__).parent
    manifest = json.loads((here / "manifest.json").read_text())
    assert manifest["cuda_major"] == 12 and manifest["llvm_major"] == 22 and manifest["priority"] == 30
    assert manifest["runtime_probe"]["libraries"] == ["libcuda.so.1"]
    files = [str(f) for f in metadata.files("proteus-python-backend-cuda12-llvm22")]
    assert not [f for f in files if "libcuda" in f or "libcudart" in f or "libnvJitLink" in f], files
    extras = metadata.metadata("proteus-python-backend-cuda12-llvm22").get_all("Provides-Extra")
    assert extras == ["toolkit"]


def test_host_api_in_the_cuda_backend(cuda):
    assert cuda.has_cuda is True and cuda.has_hip is False
    f = cuda.compile('extern "C" int plus1(int x) { return x + 1; }').get_function("plus1", cuda.i32, [cuda.i32])
    assert f(41) == 42


def test_ptx_and_cubin_for_sm_90_without_a_gpu(cuda):
    code = "import proteus\nm = proteus.compile(%r, target='cuda')\nprint(m.arch, m.functions)\n" \
           "open('out.cubin', 'wb').write(m.cubin); open('out.ptx', 'w').write(m.ptx)" % SAXPY
    res = run_python(code, PROTEUS_BACKEND_KIND="cuda", PROTEUS_CUDA_ARCH="sm_90")
    assert res.returncode == 0, res.stderr
    assert res.stdout.split(" ", 1) == ["sm_90", "['saxpy', 'write_int']\n"]
    ptx = pathlib.Path("out.ptx").read_text()
    assert ".target sm_90" in ptx and ".entry saxpy" in ptx
    cubin = pathlib.Path("out.cubin").read_bytes()
    assert cubin[:4] == b"\x7fELF" and struct.unpack_from("<H", cubin, 18)[0] == EM_CUDA


def test_arch_override_and_bad_arch():
    code = ("import proteus\nm = proteus.compile(%r, target='cuda')\nprint(m.arch, '.target sm_80' in m.ptx)" % SAXPY)
    res = run_python(code, PROTEUS_BACKEND_KIND="cuda", PROTEUS_CUDA_ARCH="sm_80")
    assert res.stdout.split() == ["sm_80", "True"], res.stderr
    bad = run_python("import proteus\nproteus.compile(%r, target='cuda')" % SAXPY, PROTEUS_BACKEND_KIND="cuda",
                     PROTEUS_CUDA_ARCH="volta")
    assert "PROTEUS_CUDA_ARCH=volta" in bad.stderr


def test_gpu_module_ir_is_device_ir(cuda):
    m = cuda.compile(SAXPY, target="cuda")
    assert "nvptx64-nvidia-cuda" in m.ir and "@saxpy" in m.ir
    assert m.asm is None  # the device code is m.ptx


def test_llvmir_nvptx(cuda):
    ir = """
target triple = "nvptx64-nvidia-cuda"
define ptx_kernel void @store(ptr addrspace(1) %p) {
  store i32 7, ptr addrspace(1) %p
  ret void
}
"""
    m = cuda.compile(ir, frontend="llvmir", target="cuda")
    assert ".entry store" in m.ptx and m.cubin[:4] == b"\x7fELF"


@pytest.mark.skipif(shutil.which("nvcc") is None and not os.environ.get("PROTEUS_NVCC_BIN"), reason="no nvcc here")
def test_nvcc_path(cuda):
    m = cuda.compile(SAXPY, target="cuda", compiler="nvcc")
    assert m.cubin[:4] == b"\x7fELF" and m.ptx is None and m.arch
    with pytest.raises(cuda.CompileError, match="nvcc failed"):
        cuda.compile("__global__ void broken( {", target="cuda", compiler="nvcc")


def test_missing_nvcc_names_both_places():
    res = run_python("import proteus\nproteus.compile(%r, target='cuda', compiler='nvcc')" % SAXPY,
                     PROTEUS_BACKEND_KIND="cuda", PATH=os.path.dirname(sys.executable))
    assert "PROTEUS_NVCC_BIN" in res.stderr and "PATH" in res.stderr


def test_bad_cuda_source_is_a_compile_error(cuda):
    with pytest.raises(cuda.CompileError, match=r"source\.cu:2:\d+"):
        cuda.compile('extern "C" __global__ void k(int* p) {\n  *p = undefined_value;\n}\n', target="cuda")


def test_wrong_toolkit_version_names_the_variable(tmp_path):
    fake = tmp_path / "cuda-13"
    (fake / "include").mkdir(parents=True)
    (fake / "include" / "cuda.h").write_text("#define CUDA_VERSION 13000\n")
    res = run_python("import proteus\nproteus.compile(%r, target='cuda')" % SAXPY, PROTEUS_BACKEND_KIND="cuda",
                     PROTEUS_CUDA_HOME=str(fake))
    assert "PROTEUS_CUDA_HOME=" + str(fake) in res.stderr and "CUDA 13.0" in res.stderr


def test_gpu_module_rejects_get_function(cuda):
    m = cuda.compile(SAXPY, target="cuda")
    with pytest.raises(ValueError, match="Target is a GPU model, cannot directly run functions, use launch()"):
        m.get_function("saxpy", None, ARGS)


def test_launch_validation_without_a_gpu(cuda):
    k = cuda.compile(SAXPY, target="cuda").get_kernel("write_int", [cuda.ptr, cuda.i32])
    assert repr(k) == "<proteus.Kernel name='write_int' restype=None argtypes=[proteus.ptr, proteus.i32]>"
    with pytest.raises(TypeError, match="grid must be an int or a tuple/list of 1 to 3 ints"):
        k.launch("1", 1, [0, 1])
    with pytest.raises(TypeError, match="grid must contain between 1 and 3 dimensions"):
        k.launch((1, 1, 1, 1), 1, [0, 1])
    with pytest.raises(TypeError, match="block must contain between 1 and 3 dimensions"):
        k.launch(1, [], [0, 1])
    with pytest.raises(TypeError, match="kernel argument count does not match argtypes"):
        k.launch(1, 1, [0])
    # Scalars are converted as calls convert them: range-checked, naming the argument.
    with pytest.raises(OverflowError, match="argument 1 .* does not fit in proteus.i32"):
        k.launch(1, 1, [0, 2**40])
    with pytest.raises(TypeError):
        k.launch(1, 1, [0, "seven"])
    with pytest.raises(TypeError, match="pointer argument must be an int, None, data_ptr\\(\\) object, or "
                                        "__cuda_array_interface__ object"):
        k.launch(1, 1, ["x", 1])

    class Empty:
        __cuda_array_interface__ = {"data": (), "shape": (1,), "typestr": "<i4", "version": 3}

    with pytest.raises(TypeError, match="__cuda_array_interface__ has no 'data': \\(address, read_only\\) tuple"):
        k.launch(1, 1, [Empty(), 1])


@pytest.mark.skipif(gpu_present(), reason="a GPU is present: the no-driver error cannot happen")
def test_launch_without_a_driver_is_a_clear_error(cuda):
    k = cuda.compile(SAXPY, target="cuda").get_kernel("write_int", [cuda.ptr, cuda.i32])
    with pytest.raises(RuntimeError, match="libcuda.so.1"):
        k.launch(1, 1, [0, 1])


def test_device_code_comes_from_the_persistent_cache(tmp_path):
    code = ("import proteus\nm = proteus.compile(%r, target='cuda')\n"
            "print(len(m.cubin), proteus.backend_info()['frontend_runs'])" % SAXPY)
    env = dict(PROTEUS_BACKEND_KIND="cuda", PROTEUS_CACHE_DIR=str(tmp_path))
    first, second = run_python(code, **env), run_python(code, **env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split()[0] == second.stdout.split()[0] and second.stdout.split()[1] == "0"


# --- on a GPU ----------------------------------------------------------------------------------

def cudart():
    import nvidia.cuda_runtime

    lib = ctypes.CDLL(os.path.join(list(nvidia.cuda_runtime.__path__)[0], "lib", "libcudart.so.12"))
    lib.cudaMalloc.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]
    lib.cudaMemcpy.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    lib.cudaFree.argtypes = [ctypes.c_void_p]
    return lib


@needs_gpu
def test_write_int_smoke(cuda):
    rt = cudart()
    dev = ctypes.c_void_p()
    assert rt.cudaMalloc(ctypes.byref(dev), 4) == 0
    k = cuda.compile(SAXPY, target="cuda").get_kernel("write_int", [cuda.ptr, cuda.i32])
    k.launch(1, 1, [dev.value, 1234])
    out = ctypes.c_int(0)
    assert rt.cudaMemcpy(ctypes.addressof(out), dev, 4, 2) == 0  # device to host (synchronises)
    assert out.value == 1234
    rt.cudaFree(dev)


@needs_gpu
def test_saxpy_against_numpy(cuda):
    rt = cudart()
    n = 1 << 16
    x = np.random.default_rng(0).random(n, dtype=np.float32)
    y = np.ones(n, dtype=np.float32)
    dx, dy = ctypes.c_void_p(), ctypes.c_void_p()
    rt.cudaMalloc(ctypes.byref(dx), 4 * n)
    rt.cudaMalloc(ctypes.byref(dy), 4 * n)
    rt.cudaMemcpy(dx, x.ctypes.data, 4 * n, 1)
    rt.cudaMemcpy(dy, y.ctypes.data, 4 * n, 1)
    k = cuda.compile(SAXPY, target="cuda").get_kernel("saxpy", ARGS)
    k.launch((n + 255) // 256, 256, [n, 2.0, dx.value, dy.value], stream=0)
    out = np.empty(n, dtype=np.float32)
    rt.cudaMemcpy(out.ctypes.data, dy, 4 * n, 2)
    np.testing.assert_allclose(out, 2.0 * x + 1.0, rtol=1e-6)


SCALE = r'''
extern "C" __global__ void scale(float* y, int n, float a) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  for (int r = 0; r < n; ++r) if (i < 1024) y[i] *= a;
}
'''


def test_kernel_specialization_compiles_one_variant_per_value(cuda):
    m = cuda.compile(SCALE, target="cuda")
    k = m.get_kernel("scale", [cuda.ptr, cuda.i32, cuda.f32], specialize=[1])
    assert k.specialize == [1] and k.variants == 0 and k.last_variant is None
    for n in (4, 8, 4):
        try:
            k.launch(1, 64, [0, n, 2.0])
        except RuntimeError:  # no driver here: the variant is compiled before the launch fails
            assert not gpu_present()
    assert k.variants == 2
    variant = k.last_variant
    assert variant.arch == m.arch and ".entry scale" in variant.ptx and variant.cubin[:4] == b"\x7fELF"
    assert "[scale_param_1]" in m.ptx and "[scale_param_1]" not in variant.ptx  # n is no longer read: a constant
    with pytest.raises(ValueError, match="cannot specialize argument 0: it is a pointer"):
        m.get_kernel("scale", [cuda.ptr, cuda.i32, cuda.f32], specialize=[0])


def test_link_takes_host_modules_only(cuda):
    gpu = cuda.compile(SAXPY, target="cuda")
    with pytest.raises(ValueError, match="link= takes host modules; this one is for target='cuda'"):
        cuda.compile('extern "C" int f() { return 1; }', link=[gpu])
    host = cuda.compile('extern "C" int g() { return 1; }')
    with pytest.raises(ValueError, match="link= is for host code; target='cuda' modules link nothing"):
        cuda.compile(SAXPY, target="cuda", link=[host])


def test_kernel_signatures_come_from_the_source(cuda):
    m = cuda.compile(SAXPY, target="cuda")
    k = m.get_kernel("saxpy")  # argtypes from the declaration
    assert k.signature == "void saxpy(int, float, const float *, float *)"
    assert k.argtypes == ARGS
    with pytest.raises(TypeError, match=r"get_kernel\('saxpy'\): argument 1 is 'float' in the source, but argtypes "
                                        r"give proteus.f64"):
        m.get_kernel("saxpy", [cuda.i32, cuda.f64, cuda.ptr, cuda.ptr])

    class Device:
        def __init__(self, typestr):
            self.__cuda_array_interface__ = {"data": (4096, False), "shape": (2,), "typestr": typestr, "version": 3}

    with pytest.raises(TypeError, match=r"argument 2 \('const float \*'\) needs float32 elements; got an array of "
                                        r"float64"):
        k.launch(1, 1, [2, 1.0, Device("<f8"), Device("<f4")])  # checked before the driver is needed
