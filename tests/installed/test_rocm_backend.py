"""The ROCm 7.2 backend installed with the shim and the host backend. ROCm 7.2 cannot be installed
here: compile checks use Debian's ROCm 5.2 HIP headers and device libraries as the ROCm root
(PROTEUS_ROCM_PATH=/usr); launches need an AMD GPU and skip without one."""

import ctypes
import json
import os
import pathlib
import struct
import subprocess
import sys
from importlib import metadata

import pytest

os.environ["PROTEUS_BACKEND_KIND"] = "rocm"  # selection alone picks host where there is no AMD GPU
import proteus  # noqa: E402

DEBIAN_ROCM = "/usr"
HAVE_HIP_HEADERS = pathlib.Path(DEBIAN_ROCM, "include/hip/hip_runtime.h").is_file()
needs_rocm_root = pytest.mark.skipif(not HAVE_HIP_HEADERS, reason="Debian's libamdhip64-dev/rocm-device-libs are not installed")
EM_AMDGPU = 224
WITH_HEADER = '''#include <hip/hip_runtime.h>
extern "C" __global__ void axpy(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i] + sqrtf(x[i]);
}
'''
WITHOUT_HEADER = WITH_HEADER.split("\n", 1)[1]


def amd_gpu_present():
    """An independent probe (not the backend's is_runtime_compatible, which these tests check)."""
    for name in ("libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        return lib.hipGetDeviceCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


def run_python(code, **env):
    base = {k: v for k, v in os.environ.items() if k not in ("PROTEUS_BACKEND_KIND", "PROTEUS_ROCM_PATH")}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(base, **env))


@pytest.fixture(autouse=True)
def rocm_root(monkeypatch):
    monkeypatch.setenv("PROTEUS_ROCM_PATH", DEBIAN_ROCM)


def test_selection_with_both_backends():
    res = run_python("import proteus; print(proteus.active_backend)")
    assert res.stdout.strip() == ("rocm" if amd_gpu_present() else "host"), res.stderr
    forced = run_python("import proteus; print(proteus.active_backend_variant, proteus.has_hip, proteus.has_cuda)",
                        PROTEUS_BACKEND_KIND="rocm")
    assert forced.stdout.split() == ["rocm72", "True", "False"], forced.stderr


def test_manifest_and_nothing_of_rocm_vendored():
    import proteus_backend_rocm as pkg

    manifest = json.loads((pathlib.Path(pkg.__file__).parent / "manifest.json").read_text())
    assert manifest["rocm_version"] == "7.2" and manifest["llvm_major"] == 22 and manifest["priority"] == 20
    files = [str(f) for f in metadata.files("proteus-python-backend-rocm72")]
    assert not [f for f in files if "amdhip" in f or "hsa" in f], files


def test_host_api_in_the_rocm_backend():
    f = proteus.compile('extern "C" int plus1(int x) { return x + 1; }').get_function("plus1", proteus.i32, [proteus.i32])
    assert f(41) == 42


@needs_rocm_root
@pytest.mark.parametrize("source", [WITH_HEADER, WITHOUT_HEADER], ids=["with-hip_runtime.h", "without"])
def test_hip_compiles_to_a_code_object_for_gfx90a(source):
    m = proteus.compile(source, target="hip")
    code = m.cubin
    assert m.arch == "gfx90a" and m.functions == ["axpy"] and m.ptx is None
    assert code[:4] == b"\x7fELF" and struct.unpack_from("<H", code, 18)[0] == EM_AMDGPU
    assert struct.unpack_from("<H", code, 16)[0] == 3  # ET_DYN: a linked HSA code object
    assert b"axpy" in code and b"amdhsa" in code


@needs_rocm_root
def test_arch_override_and_bad_arch():
    ok = run_python("import proteus\nprint(proteus.compile(%r, target='hip').arch)" % WITHOUT_HEADER,
                    PROTEUS_BACKEND_KIND="rocm", PROTEUS_ROCM_PATH=DEBIAN_ROCM, PROTEUS_HIP_ARCH="gfx1030")
    assert ok.stdout.strip() == "gfx1030", ok.stderr
    bad = run_python("import proteus\nproteus.compile(%r, target='hip')" % WITHOUT_HEADER,
                     PROTEUS_BACKEND_KIND="rocm", PROTEUS_ROCM_PATH=DEBIAN_ROCM, PROTEUS_HIP_ARCH="vega")
    assert "PROTEUS_HIP_ARCH=vega" in bad.stderr


def test_llvmir_amdgpu():
    ir = ('target triple = "amdgcn-amd-amdhsa"\n'
          "define amdgpu_kernel void @store(ptr addrspace(1) %p) {\n  store i32 7, ptr addrspace(1) %p\n  ret void\n}\n")
    m = proteus.compile(ir, frontend="llvmir", target="hip")
    assert m.functions == ["store"] and struct.unpack_from("<H", m.cubin, 18)[0] == EM_AMDGPU


def test_missing_rocm_root_names_the_variables(monkeypatch):
    res = run_python("import proteus\nproteus.compile(%r, target='hip')" % WITHOUT_HEADER, PROTEUS_BACKEND_KIND="rocm")
    if os.path.exists("/opt/rocm"):
        pytest.skip("/opt/rocm exists here")
    assert "PROTEUS_ROCM_PATH" in res.stderr and "ROCM_PATH" in res.stderr and "/opt/rocm" in res.stderr


@needs_rocm_root
def test_bad_hip_source_is_a_compile_error():
    with pytest.raises(proteus.CompileError, match=r"source\.hip:2:\d+"):
        proteus.compile('extern "C" __global__ void k(int* p) {\n  *p = undefined_value;\n}\n', target="hip")


@needs_rocm_root
def test_launch_validation_and_the_no_gpu_error():
    k = proteus.compile(WITHOUT_HEADER, target="hip").get_kernel("axpy", [proteus.i32, proteus.f32, proteus.ptr, proteus.ptr])
    assert repr(k).startswith("<proteus.Kernel name='axpy' restype=None argtypes=[proteus.i32")
    with pytest.raises(TypeError, match="grid must contain between 1 and 3 dimensions"):
        k.launch((), 64, [1, 2.0, 0, 0])
    with pytest.raises(TypeError, match="kernel argument count does not match argtypes"):
        k.launch(1, 64, [1])
    if not amd_gpu_present():
        with pytest.raises(RuntimeError, match="libamdhip64"):
            k.launch(1, 64, [1, 2.0, 0, 0])


@needs_rocm_root
def test_code_objects_come_from_the_persistent_cache(tmp_path):
    code = ("import proteus\nm = proteus.compile(%r, target='hip')\n"
            "print(len(m.cubin), proteus.backend_info()['frontend_runs'])" % WITHOUT_HEADER)
    env = dict(PROTEUS_BACKEND_KIND="rocm", PROTEUS_ROCM_PATH=DEBIAN_ROCM, PROTEUS_CACHE_DIR=str(tmp_path))
    first, second = run_python(code, **env), run_python(code, **env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split()[0] == second.stdout.split()[0] and second.stdout.split()[1] == "0"


@pytest.mark.skipif(not amd_gpu_present(), reason="no AMD GPU with a HIP runtime on this machine")
def test_launch_on_an_amd_gpu():
    hip = ctypes.CDLL("libamdhip64.so")
    dev = ctypes.c_void_p()
    assert hip.hipMalloc(ctypes.byref(dev), ctypes.c_size_t(4)) == 0
    src = 'extern "C" __global__ void write_int(int* p, int v) { *p = v; }'
    proteus.compile(src, target="hip").get_kernel("write_int", [proteus.ptr, proteus.i32]).launch(1, 1, [dev.value, 77])
    out = ctypes.c_int(0)
    assert hip.hipMemcpy(ctypes.byref(out), dev, ctypes.c_size_t(4), 2) == 0
    assert out.value == 77


@needs_rocm_root
def test_kernel_specialization_compiles_one_variant_per_value():
    src = ('extern "C" __global__ void scale(float* y, int n, float a) {\n'
           '  int i = blockIdx.x * blockDim.x + threadIdx.x;\n'
           '  for (int r = 0; r < n; ++r) if (i < 1024) y[i] *= a;\n}\n')
    k = proteus.compile(src, target="hip").get_kernel("scale", [proteus.ptr, proteus.i32, proteus.f32], specialize=[1])
    for n in (3, 5, 3):
        try:
            k.launch(1, 64, [0, n, 2.0])
        except RuntimeError:
            assert not amd_gpu_present()
    assert k.variants == 2
    code = k.last_variant.cubin
    assert struct.unpack_from("<H", code, 18)[0] == EM_AMDGPU and b"scale" in code
