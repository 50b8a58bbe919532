"""The CUDA launch path against a fake driver (tests/fake_driver: a shared library exporting the
driver entry points the engine opens, recording each call): module load and unload, kernel
handles, argument packing, streams, driver error names, and launches racing with variant
eviction. Runs in every CI run; no GPU needed. FAKE_DRIVER_DIR holds libcuda.so.1 (the harness
makes it); each test runs a child process with it on LD_LIBRARY_PATH."""

import os
import struct
import subprocess
import sys
import textwrap

import pytest

FAKE_DIR = os.environ.get("FAKE_DRIVER_DIR", "")
pytestmark = pytest.mark.skipif(not FAKE_DIR, reason="FAKE_DRIVER_DIR is not set (tests/installed_wheel.py sets it)")

KERNELS = r'''
extern "C" __global__ void scale(float* x, float a, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] *= a;
}
extern "C" __global__ void fill(int* out, int n, int value) {
  for (int i = 0; i < n; ++i) out[i] = value;
}
'''


def run(tmp_path, code, args=0, **env):
    log = tmp_path / "driver.log"
    full = {k: v for k, v in os.environ.items() if not k.startswith("PROTEUS_BACKEND")}
    full.update(LD_LIBRARY_PATH=FAKE_DIR, FAKE_DRIVER_LOG=str(log), FAKE_DRIVER_ARGS=str(args),
                PROTEUS_CACHE_DIR=str(tmp_path / "cache"), **env)
    prologue = "import proteus\nassert proteus.active_backend == 'cuda', proteus.active_backend\n"
    res = subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(code) % {"src": KERNELS}],
                         capture_output=True, text=True, env=full, timeout=600)
    lines = log.read_text().splitlines() if log.exists() else []
    return res, lines


def calls(lines, entry):
    return [line for line in lines if line.startswith(entry + " ")]


def fields(line):
    return dict(part.split("=", 1) for part in line.split()[1:] if "=" in part)


def test_the_fake_driver_is_selected_as_a_gpu(tmp_path):
    res, lines = run(tmp_path, "print(proteus.compile(%(src)r, target='cuda').arch)")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "sm_90"  # the fake reports compute capability 9.0
    assert calls(lines, "cuInit")


def test_a_launch_loads_once_packs_arguments_and_passes_the_stream(tmp_path):
    res, lines = run(tmp_path, """
        m = proteus.compile(%(src)r, target='cuda')
        k = m.get_kernel("scale", [proteus.ptr, proteus.f32, proteus.i32])
        class Stream:
            cuda_stream = 0x77
        k.launch((2, 3), 128, [0x1000, 2.5, -7], shmem=64, stream=Stream())
        k.launch(1, (32, 2, 1), (0x2000, 0.5, 9))
        handle = k.handle
        del k, m
        import gc; gc.collect()
        print(handle)
    """, args=3)
    assert res.returncode == 0, res.stderr
    loads, gets, launches = calls(lines, "cuModuleLoadData"), calls(lines, "cuModuleGetFunction"), calls(lines, "cuLaunchKernel")
    assert len(loads) == 1 and fields(loads[0])["image"] == "elf"  # ptxas made a cubin
    assert len(gets) == 1 and fields(gets[0])["name"] == "scale"  # the handle is kept by the module
    assert int(res.stdout) == int(fields(gets[0])["function"])
    first, second = (fields(line) for line in launches)
    assert first["grid"] == "2,3,1" and first["block"] == "128,1,1" and first["shmem"] == "64" and first["stream"] == "77"
    a_bits = struct.unpack("<I", struct.pack("<f", 2.5))[0]
    slots = first["args"].split(",")
    assert int(slots[0], 16) == 0x1000 and int(slots[1], 16) & 0xFFFFFFFF == a_bits
    assert int(slots[2], 16) & 0xFFFFFFFF == (-7) & 0xFFFFFFFF
    assert second["grid"] == "1,1,1" and second["block"] == "32,2,1" and second["stream"] == "0"
    assert not any("STALE" in line for line in lines), lines
    unloads = calls(lines, "cuModuleUnload")  # the module is unloaded when its last reference goes
    assert [fields(u)["module"] for u in unloads] == [fields(loads[0])["module"]]


@pytest.mark.parametrize("entry,code,name", [("cuLaunchKernel", 701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"),
                                             ("cuModuleLoadData", 200, "CUDA_ERROR_INVALID_IMAGE"),
                                             ("cuModuleGetFunction", 500, "CUDA_ERROR_NOT_FOUND")])
def test_driver_errors_name_the_call_and_the_error(tmp_path, entry, code, name):
    res, _ = run(tmp_path, """
        k = proteus.compile(%(src)r, target='cuda').get_kernel("fill", [proteus.ptr, proteus.i32, proteus.i32])
        try:
            k.launch(1, 1, [0, 1, 2])
        except RuntimeError as e:
            print(e)
        k2 = proteus.compile(%(src)r + "// again", target='cuda').get_kernel("fill", [proteus.ptr, proteus.i32, proteus.i32])
        print("alive")
    """, FAKE_DRIVER_FAIL=f"{entry}={code}")
    assert res.returncode == 0, res.stderr
    message, alive = res.stdout.strip().splitlines()
    assert message.startswith("CUDA driver: " + entry) and name in message, message
    assert alive == "alive"


def test_launches_racing_with_variant_eviction(tmp_path):
    """Threads launch one kernel with many distinct specialised values under a variant bound of 2, so
    variants are evicted while other threads launch. Every launch must use a live kernel handle of a
    loaded module (the fake fails stale ones) and pass its own values."""
    res, lines = run(tmp_path, """
        import threading
        k = proteus.compile(%(src)r, target='cuda').get_kernel(
            "fill", [proteus.ptr, proteus.i32, proteus.i32], specialize=[1])
        errors = []
        def worker(t):
            for i in range(12):
                try:
                    k.launch(1, 1, [0x1000 + t, 1 + (t * 12 + i) %% 40, t])
                except Exception as e:
                    errors.append(repr(e))
        threads = [threading.Thread(target=worker, args=(t,)) for t in range(6)]
        for th in threads: th.start()
        for th in threads: th.join()
        print(len(errors), errors[:3], k.variants)
    """, args=3, PROTEUS_SPECIALIZE_MAX_VARIANTS="2", FAKE_DRIVER_DELAY_US="2000")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("0 [] "), res.stdout
    launches = calls(lines, "cuLaunchKernel")
    assert len(launches) == 72 and not any("STALE" in line for line in lines)
    for line in launches:  # each launch carries its own thread's arguments
        slots = [int(s, 16) for s in fields(line)["args"].split(",")]
        assert slots[0] - 0x1000 == slots[2]
    assert len(calls(lines, "cuModuleUnload")) > 0  # variants were evicted meanwhile


def test_typed_pointers_check_cuda_arrays_before_launching(tmp_path):
    res, lines = run(tmp_path, """
        k = proteus.compile(%(src)r, target='cuda').get_kernel("fill", [proteus.ptr[proteus.i32], proteus.i32,
                                                                          proteus.i32])
        class Device:  # what CuPy, Numba and PyTorch arrays expose
            def __init__(self, typestr, strides=None, read_only=False):
                self.__cuda_array_interface__ = {"data": (0x3000, read_only), "shape": (4,), "typestr": typestr,
                                                 "strides": strides, "version": 3}
        for bad in (Device("<f4"), Device("<i4", strides=(8,)), Device("<i4", read_only=True)):
            try:
                k.launch(1, 1, [bad, 4, 7])
            except (TypeError, ValueError) as e:
                print(type(e).__name__, e)
        k.launch(1, 1, [Device("<i4"), 4, 7])
    """, args=3)
    assert res.returncode == 0, res.stderr
    errors = res.stdout.splitlines()
    # the source's declaration names the argument (int *out); the typed pointer agrees with it
    assert errors[0] == ("TypeError argument 0 ('int *') needs int32 elements; got an array of "
                         "float32 (convert it, e.g. numpy.asarray(a, dtype=...))")
    assert errors[1].startswith("ValueError argument 0 ('int *') needs C-contiguous memory")
    assert "is written through, but the array passed is read-only" in errors[2]
    launches = calls(lines, "cuLaunchKernel")
    assert len(launches) == 1 and int(fields(launches[0])["args"].split(",")[0], 16) == 0x3000  # nothing else launched


MLIR_SCALE = """
module attributes {gpu.container_module} {
  gpu.module @k {
    gpu.func @scale(%x: memref<?x?xf32>, %a: f32) kernel {
      %c0 = arith.constant 0 : index
      %v = memref.load %x[%c0, %c0] : memref<?x?xf32>
      %w = arith.mulf %v, %a : f32
      memref.store %w, %x[%c0, %c0] : memref<?x?xf32>
      gpu.return
    }
  }
}
"""


def test_an_mlir_kernel_gets_its_memref_descriptor(tmp_path):
    res, lines = run(tmp_path, """
        k = proteus.compile(%(mlir)r, frontend='mlir', target='cuda').get_kernel("scale", ...)
        class Device:
            __cuda_array_interface__ = {"data": (0x5000, False), "shape": (3, 4), "typestr": "<f4", "version": 3}
        k.launch(1, 1, [Device(), 0.5])
        try:
            k.launch(1, 1, [0x5000, 0.5])
        except TypeError as e:
            print(e)
    """.replace("%(mlir)r", repr(MLIR_SCALE).replace("%", "%%")), args=8)  # run() formats the code with %
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "argument 0 ('memref<?x?xf32>') takes an array (its shape fills the memref); got int"
    launches = calls(lines, "cuLaunchKernel")
    assert len(launches) == 1
    slots = [int(s, 16) for s in fields(launches[0])["args"].split(",")]
    # allocated, aligned, offset, sizes (3, 4), strides in elements (4, 1), then a
    assert slots[:7] == [0x5000, 0x5000, 0, 3, 4, 4, 1]
    assert slots[7] & 0xFFFFFFFF == struct.unpack("<I", struct.pack("<f", 0.5))[0]
