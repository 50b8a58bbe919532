"""CUDA benchmark (not a test; needs an NVIDIA GPU): launch overhead of an empty kernel and compile
latency, against CuPy RawKernel (NVRTC) and raw cuLaunchKernel called from C.

usage: PROTEUS_BACKEND_KIND=cuda python tools/bench/cuda_launch.py   (cuda backend + [toolkit];
       CuPy optional). Without a GPU it says so and exits 0.
"""

import ctypes
import os
import time
import timeit

os.environ.setdefault("PROTEUS_BACKEND_KIND", "cuda")
import proteus  # noqa: E402

EMPTY = 'extern "C" __global__ void empty(int x) {}'
N = 20000

# Raw cuLaunchKernel in a C loop, JIT-compiled by proteus itself (host code): the floor.
RAW = r'''
#include <dlfcn.h>
#include <chrono>
typedef int (*launch_t)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*, void**, void**);
typedef int (*sync_t)();
extern "C" double raw_launch_ns(void* function, int n) {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW);
  launch_t launch = (launch_t)dlsym(lib, "cuLaunchKernel");
  sync_t sync = (sync_t)dlsym(lib, "cuCtxSynchronize");
  int x = 0; void* params[] = {&x};
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) launch(function, 1, 1, 1, 1, 1, 1, 0, nullptr, params, nullptr);
  sync();
  return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / n;
}
'''


def main():
    import proteus_backend_cuda

    if not proteus_backend_cuda.is_runtime_compatible():  # the backend's own probe: driver + a device
        print("cuda_launch.py: no NVIDIA driver with a CUDA device here; nothing measured")
        return
    sync = ctypes.CDLL("libcuda.so.1").cuCtxSynchronize
    rows = []
    t = time.perf_counter()
    k = proteus.compile(EMPTY + "// %d" % time.time_ns(), target="cuda").get_kernel("empty", [proteus.i32])
    rows.append(("compile empty kernel (clang, cold)", (time.perf_counter() - t) * 1e3, "ms"))
    k.launch(1, 1, [0])
    sync()
    per = min(timeit.repeat(lambda: k.launch(1, 1, [0]), number=N, repeat=5)) / N * 1e9
    sync()
    rows.append(("launch overhead, proteus Kernel.launch", per, "ns"))
    raw = proteus.compile(RAW).get_function("raw_launch_ns", proteus.f64, [proteus.ptr, proteus.i32])
    rows.append(("launch overhead, raw cuLaunchKernel from C", raw(k.handle, N), "ns"))
    try:
        import cupy

        name = "empty_%d" % time.time_ns()
        t = time.perf_counter()
        ck = cupy.RawKernel('extern "C" __global__ void %s(int x) {}' % name, name)
        ck.compile()
        rows.append(("compile empty kernel, CuPy RawKernel (NVRTC)", (time.perf_counter() - t) * 1e3, "ms"))
        arg = cupy.int32(0)
        ck((1,), (1,), (arg,))
        cupy.cuda.Device().synchronize()
        per = min(timeit.repeat(lambda: ck((1,), (1,), (arg,)), number=N, repeat=5)) / N * 1e9
        rows.append(("launch overhead, CuPy RawKernel", per, "ns"))
    except Exception as exc:  # CuPy missing or its NVRTC unavailable
        rows.append((f"CuPy not measured ({type(exc).__name__}: {exc})", float("nan"), ""))
    print("| measurement | value |\n|---|---|")
    for name, value, unit in rows:
        print(f"| {name} | {value:.3g} {unit} |")


if __name__ == "__main__":
    main()
