"""frontend="mlir" for GPU targets, in the cuda and rocm venvs: a gpu.container_module with one
gpu.module lowered to NVVM (PTX, then a cubin with the CUDA wheels' ptxas) or ROCDL (an AMDGPU code
object). Compiles need no GPU; the launch test needs one (and CuPy for CUDA) and skips without."""

import ctypes
import os
import pathlib
import struct
from importlib import metadata

import pytest

BACKEND = "cuda" if any(d.metadata["Name"] == "proteus-python-backend-cuda12-llvm22"
                        for d in metadata.distributions()) else "rocm"
TARGET = {"cuda": "cuda", "rocm": "hip"}[BACKEND]
os.environ["PROTEUS_BACKEND_KIND"] = BACKEND
if BACKEND == "rocm":
    os.environ.setdefault("PROTEUS_ROCM_PATH", "/usr")  # Debian's ROCm 5.2 device libraries (test_rocm_backend.py)
import proteus  # noqa: E402

needs_rocm_root = pytest.mark.skipif(
    BACKEND == "rocm" and not pathlib.Path(os.environ["PROTEUS_ROCM_PATH"], "include/hip/hip_runtime.h").is_file(),
    reason="Debian's libamdhip64-dev/rocm-device-libs are not installed")

SAXPY = """
module attributes {gpu.container_module} {
  gpu.module @kernels {
    gpu.func @saxpy(%a: f32, %x: memref<?xf32>, %y: memref<?xf32>, %n: index) kernel {
      %bid = gpu.block_id x
      %bdim = gpu.block_dim x
      %tid = gpu.thread_id x
      %base = arith.muli %bid, %bdim : index
      %i = arith.addi %base, %tid : index
      %inside = arith.cmpi slt, %i, %n : index
      scf.if %inside {
        %xv = memref.load %x[%i] : memref<?xf32>
        %yv = memref.load %y[%i] : memref<?xf32>
        %ax = arith.mulf %a, %xv : f32
        %s = math.sqrt %yv : f32
        %e = math.exp %s : f32
        %r = arith.addf %ax, %e : f32
        memref.store %r, %y[%i] : memref<?xf32>
      }
      gpu.return
    }
    gpu.func @helper_is_not_a_kernel(%v: f32) -> f32 {
      gpu.return %v : f32
    }
  }
}
"""


def elf_machine(image):
    assert image[:4] == b"\x7fELF"
    return struct.unpack_from("<H", image, 18)[0]


@needs_rocm_root
def test_a_gpu_module_compiles_to_device_code():
    m = proteus.compile(SAXPY, frontend="mlir", target=TARGET)
    assert m.functions == ["saxpy"]  # the kernels
    k = m.get_kernel("saxpy", ...)
    assert k.signature == "void saxpy(f32, memref<?xf32>, memref<?xf32>, index)"
    assert k.argtypes == [proteus.f32, proteus.ptr, proteus.ptr, proteus.i64]
    if TARGET == "cuda":
        assert ".entry saxpy" in m.ptx and "__nv_expf" not in m.ptx  # libdevice linked in, not called
        assert elf_machine(m.cubin) == 190  # EM_CUDA: ptxas made a cubin
    else:
        assert m.ptx is None and elf_machine(m.cubin) == 224  # EM_AMDGPU
        assert b"saxpy" in m.cubin and b"saxpy.kd" in m.cubin  # the kernel and its descriptor
    with pytest.raises(proteus.SymbolNotFoundError, match=r"no kernel 'nope'; its kernels are \['saxpy'\]"):
        m.get_kernel("nope", ...)


@needs_rocm_root
def test_module_shape_messages():
    no_gpu_module = "func.func @f(%x: i32) -> i32 {\n  return %x : i32\n}\n"
    with pytest.raises(proteus.CompileError, match=f"target='{TARGET}' needs MLIR with a gpu.module"):
        proteus.compile(no_gpu_module, frontend="mlir", target=TARGET)
    two = SAXPY.replace("  gpu.module @kernels {", "  gpu.module @other {\n  }\n  gpu.module @kernels {")
    with pytest.raises(proteus.CompileError, match=r"exactly one gpu.module per module; this one has 2 \(@other, @kernels\)"):
        proteus.compile(two, frontend="mlir", target=TARGET)
    no_kernel = SAXPY.replace(" kernel {", " {")
    with pytest.raises(proteus.CompileError, match="gpu.module @kernels has no kernel"):
        proteus.compile(no_kernel, frontend="mlir", target=TARGET)
    not_container = SAXPY.replace(" attributes {gpu.container_module}", "")
    with pytest.raises(proteus.CompileError, match="needs the gpu.container_module attribute"):
        proteus.compile(not_container, frontend="mlir", target=TARGET)
    with pytest.raises(proteus.CompileError, match=r"source\.mlir:6:29: error: custom op .gpu\.block_dim. expected"):
        proteus.compile(SAXPY.replace("gpu.block_dim x", "gpu.block_dim w"), frontend="mlir", target=TARGET)


def gpu_present():
    names = ["libcuda.so.1"] if TARGET == "cuda" else ["libamdhip64.so.7", "libamdhip64.so.6", "libamdhip64.so"]
    for name in names:
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if TARGET == "cuda":
            return lib.cuInit(0) == 0 and lib.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
        return lib.hipGetDeviceCount(ctypes.byref(count)) == 0 and count.value > 0
    return False


@pytest.mark.skipif(not gpu_present(), reason=f"no {TARGET.upper()} GPU on this machine")
def test_launch_on_the_gpu():
    cupy = pytest.importorskip("cupy", reason="CuPy gives the device arrays")
    import numpy as np

    n = 1000
    x = cupy.arange(n, dtype=cupy.float32)
    y = cupy.full(n, 4.0, dtype=cupy.float32)
    k = proteus.compile(SAXPY, frontend="mlir", target=TARGET).get_kernel("saxpy", ...)
    k.launch((n + 127) // 128, 128, [2.0, x, y, n])
    cupy.cuda.runtime.deviceSynchronize()
    expected = 2.0 * np.arange(n, dtype=np.float32) + np.float32(np.exp(2.0))
    assert np.allclose(cupy.asnumpy(y), expected, rtol=1e-5)
