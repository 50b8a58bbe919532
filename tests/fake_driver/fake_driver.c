// A test-only stand-in for the CUDA driver (libcuda.so.1) and the HIP runtime (libamdhip64.so.*):
// the entry points the engine opens, recording every call, so the launch path (argument packing,
// streams, module load/unload, kernel handles, error names) runs in CI without a GPU.
//
// Environment:
//   FAKE_DRIVER_LOG=path     append one line per call ("cuLaunchKernel fn=3:saxpy grid=... args=...")
//   FAKE_DRIVER_ARGS=n       how many 8-byte argument slots a launch records (the engine passes
//                            pointers to 8-byte slots)
//   FAKE_DRIVER_FAIL=name=code   that entry point returns `code` (e.g. cuLaunchKernel=701)
//   FAKE_DRIVER_DELAY_US=n   each module load, kernel lookup and launch first sleeps n microseconds
//                            (widens race windows in stress tests)
// A launch with a handle whose module was unloaded (or never loaded) fails with
// CUDA_ERROR_INVALID_HANDLE (400) / hipErrorInvalidHandle (400) and logs "STALE".
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_MODULES 4096
#define MAX_FUNCTIONS 16384

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int module_loaded[MAX_MODULES];  // 1 while loaded; index = handle value
static int module_count;
static struct {
  int module;
  char name[128];
} functions[MAX_FUNCTIONS];  // handle value = index + 1
static int function_count;

static void record(const char* format, ...) __attribute__((format(printf, 1, 2)));
static void record(const char* format, ...) {
  const char* path = getenv("FAKE_DRIVER_LOG");
  if (!path) return;
  FILE* log = fopen(path, "a");
  if (!log) return;
  va_list args;
  va_start(args, format);
  vfprintf(log, format, args);
  va_end(args);
  fputc('\n', log);
  fclose(log);
}

// The injected failure for `entry`, or 0.
static int injected(const char* entry) {
  const char* spec = getenv("FAKE_DRIVER_FAIL");
  size_t n = strlen(entry);
  if (!spec || strncmp(spec, entry, n) != 0 || spec[n] != '=') return 0;
  return atoi(spec + n + 1);
}

static const char* error_name(int code, int hip) {
  switch (code) {
    case 0: return hip ? "hipSuccess" : "CUDA_SUCCESS";
    case 1: return hip ? "hipErrorInvalidValue" : "CUDA_ERROR_INVALID_VALUE";
    case 100: return hip ? "hipErrorNoDevice" : "CUDA_ERROR_NO_DEVICE";
    case 200: return hip ? "hipErrorInvalidImage" : "CUDA_ERROR_INVALID_IMAGE";
    case 400: return hip ? "hipErrorInvalidHandle" : "CUDA_ERROR_INVALID_HANDLE";
    case 500: return hip ? "hipErrorNotFound" : "CUDA_ERROR_NOT_FOUND";
    case 701: return hip ? "hipErrorLaunchOutOfResources" : "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
  }
  return NULL;
}

static void delay(void) {
  const char* us = getenv("FAKE_DRIVER_DELAY_US");
  if (us) usleep((useconds_t)atoi(us));
}

static int load(void** module, const void* image, const char* entry) {
  delay();
  if (injected(entry)) return injected(entry);
  const unsigned char* bytes = image;
  const char* kind = (bytes[0] == 0x7f && bytes[1] == 'E') ? "elf" : strstr(image, ".version") ? "ptx" : "other";
  pthread_mutex_lock(&lock);
  int handle = ++module_count;
  if (handle >= MAX_MODULES) {
    pthread_mutex_unlock(&lock);
    return 2;  // out of memory
  }
  module_loaded[handle] = 1;
  pthread_mutex_unlock(&lock);
  *module = (void*)(intptr_t)handle;
  record("%s module=%d image=%s", entry, handle, kind);
  return 0;
}

static int unload(void* module, const char* entry) {
  int handle = (int)(intptr_t)module;
  pthread_mutex_lock(&lock);
  int ok = handle > 0 && handle < MAX_MODULES && module_loaded[handle];
  if (ok) module_loaded[handle] = 0;
  pthread_mutex_unlock(&lock);
  record("%s module=%d%s", entry, handle, ok ? "" : " STALE");
  return ok ? 0 : 400;
}

static int get_function(void** function, void* module, const char* name, const char* entry) {
  delay();
  if (injected(entry)) return injected(entry);
  int handle = (int)(intptr_t)module;
  pthread_mutex_lock(&lock);
  if (handle <= 0 || handle >= MAX_MODULES || !module_loaded[handle] || function_count >= MAX_FUNCTIONS) {
    pthread_mutex_unlock(&lock);
    record("%s module=%d name=%s STALE", entry, handle, name);
    return 400;
  }
  int index = function_count++;
  functions[index].module = handle;
  snprintf(functions[index].name, sizeof functions[index].name, "%s", name);
  pthread_mutex_unlock(&lock);
  *function = (void*)(intptr_t)(index + 1);
  record("%s module=%d name=%s function=%d", entry, handle, name, index + 1);
  return 0;
}

static int launch(void* function, const unsigned* grid, const unsigned* block, unsigned shmem, void* stream,
                  void** params, const char* entry) {
  if (injected(entry)) return injected(entry);
  int index = (int)(intptr_t)function - 1;
  pthread_mutex_lock(&lock);
  int live = index >= 0 && index < function_count && module_loaded[functions[index].module];
  char name[128] = "?";
  int module = 0;
  if (index >= 0 && index < function_count) {
    memcpy(name, functions[index].name, sizeof name);
    module = functions[index].module;
  }
  pthread_mutex_unlock(&lock);
  delay();
  char args[1024] = "";
  const char* count = getenv("FAKE_DRIVER_ARGS");
  for (int i = 0, n = count ? atoi(count) : 0; i < n && params; ++i) {
    uint64_t slot;
    memcpy(&slot, params[i], sizeof slot);
    snprintf(args + strlen(args), sizeof args - strlen(args), "%s%llx", i ? "," : "", (unsigned long long)slot);
  }
  record("%s function=%d module=%d name=%s grid=%u,%u,%u block=%u,%u,%u shmem=%u stream=%llx args=%s%s", entry,
         index + 1, module, name, grid[0], grid[1], grid[2], block[0], block[1], block[2], shmem,
         (unsigned long long)(uintptr_t)stream, args, live ? "" : " STALE");
  return live ? 0 : 400;
}

// --- CUDA driver API ---------------------------------------------------------------------------------

EXPORT int cuGetErrorName(int code, const char** name) {
  *name = error_name(code, 0);
  return *name ? 0 : 1;
}
EXPORT int cuGetErrorString(int code, const char** text) {
  *text = error_name(code, 0) ? "injected by the fake driver" : NULL;
  return *text ? 0 : 1;
}
EXPORT int cuInit(unsigned flags) {
  record("cuInit flags=%u", flags);
  return injected("cuInit");
}
EXPORT int cuDriverGetVersion(int* version) {
  *version = 12080;
  return 0;
}
EXPORT int cuDeviceGetCount(int* count) {
  *count = 1;
  return injected("cuDeviceGetCount");
}
EXPORT int cuDeviceGet(int* device, int ordinal) {
  *device = ordinal;
  return 0;
}
EXPORT int cuDeviceGetAttribute(int* value, int attribute, int device) {
  (void)device;
  *value = attribute == 75 ? 9 : attribute == 76 ? 0 : 1;  // compute capability 9.0
  return 0;
}
EXPORT int cuDeviceGetName(char* name, int length, int device) {
  (void)device;
  snprintf(name, (size_t)length, "Fake GPU (proteus tests)");
  return 0;
}
EXPORT int cuDevicePrimaryCtxRetain(void** context, int device) {
  *context = (void*)(intptr_t)(0x1000 + device);
  return 0;
}
EXPORT int cuCtxSetCurrent(void* context) {
  (void)context;
  return 0;
}
EXPORT int cuModuleLoadData(void** module, const void* image) { return load(module, image, "cuModuleLoadData"); }
EXPORT int cuModuleUnload(void* module) { return unload(module, "cuModuleUnload"); }
EXPORT int cuModuleGetFunction(void** function, void* module, const char* name) {
  return get_function(function, module, name, "cuModuleGetFunction");
}
EXPORT int cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                          unsigned bz, unsigned shmem, void* stream, void** params, void** extra) {
  (void)extra;
  unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch(function, grid, block, shmem, stream, params, "cuLaunchKernel");
}

// --- HIP runtime API ---------------------------------------------------------------------------------

EXPORT const char* hipGetErrorName(int code) {
  const char* name = error_name(code, 1);
  return name ? name : "hipErrorUnknown";
}
EXPORT const char* hipGetErrorString(int code) { return error_name(code, 1) ? "injected by the fake driver" : "unknown"; }
EXPORT int hipGetDeviceCount(int* count) {
  *count = 1;
  return injected("hipGetDeviceCount");
}
EXPORT int hipSetDevice(int device) {
  record("hipSetDevice device=%d", device);
  return 0;
}
EXPORT int hipModuleLoadData(void** module, const void* image) { return load(module, image, "hipModuleLoadData"); }
EXPORT int hipModuleUnload(void* module) { return unload(module, "hipModuleUnload"); }
EXPORT int hipModuleGetFunction(void** function, void* module, const char* name) {
  return get_function(function, module, name, "hipModuleGetFunction");
}
EXPORT int hipModuleLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                                 unsigned bz, unsigned shmem, void* stream, void** params, void** extra) {
  (void)extra;
  unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  return launch(function, grid, block, shmem, stream, params, "hipModuleLaunchKernel");
}
