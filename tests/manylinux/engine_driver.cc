// A native driver of the engine, linked exactly as the wheels' extensions are (cc/native.bzl:
// glibc 2.28 link stubs, static C++ runtime, cc/glibc_compat.c). tests/manylinux_runtime.py runs it
// on this machine and inside a Debian bullseye root (glibc 2.31), where no Python of ours can run
// (bullseye's is 3.9, below what we build for): it shows that the engine the wheels ship works on
// an older glibc, and that each compatibility definition is right on both.
//
//   engine_driver compat   checks the symbols glibc 2.28 lacks or versions differently
//   engine_driver jit      compiles and calls C++ using <cmath>/<vector>, then a compile error;
//                          prints the engine's counters (run twice: the second is a cache hit)
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "proteus/engine.h"

extern "C" char __libc_single_threaded;  // cc/glibc_compat.c (glibc 2.32's is never reached)
extern "C" uint32_t arc4random(void);     // cc/glibc_compat.c (glibc 2.36)

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
  if (!ok) ++failures;
}

void* count_to(void* arg) {
  *static_cast<int*>(arg) += 1;
  return nullptr;
}

int run_compat() {
  std::string dir = "/tmp/proteus-compat-XXXXXX";
  check(mkdtemp(dir.data()) != nullptr, "mkdtemp");
  std::string file = dir + "/data", fifo = dir + "/fifo", link = dir + "/link";
  int fd = open(file.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  check(fd >= 0 && write(fd, "0123456789", 10) == 10, "write a 10-byte file");

  // stat family: glibc 2.33 made them functions; linked against 2.28 they go through __xstat.
  struct stat st{};
  check(stat(file.c_str(), &st) == 0 && st.st_size == 10 && S_ISREG(st.st_mode), "stat");
  check(fstat(fd, &st) == 0 && st.st_size == 10, "fstat");
  check(symlink(file.c_str(), link.c_str()) == 0 && lstat(link.c_str(), &st) == 0 && S_ISLNK(st.st_mode), "lstat");
  struct stat64 st64{};
  check(stat64(file.c_str(), &st64) == 0 && st64.st_size == 10, "stat64");
  check(fstat64(fd, &st64) == 0 && st64.st_size == 10, "fstat64");
  check(lstat64(link.c_str(), &st64) == 0 && S_ISLNK(st64.st_mode), "lstat64");
  check(mknod(fifo.c_str(), S_IFIFO | 0600, 0) == 0 && stat(fifo.c_str(), &st) == 0 && S_ISFIFO(st.st_mode), "mknod");
  close(fd);
  unlink(fifo.c_str());
  unlink(link.c_str());
  unlink(file.c_str());
  rmdir(dir.c_str());

  // mallinfo2 (2.33): the real one on new glibc, mallinfo widened on old.
  void* blocks[64];
  for (auto& b : blocks) b = std::malloc(1000);
  struct mallinfo2 mi = mallinfo2();
  check(mi.uordblks >= 64 * 1000 && mi.arena >= mi.uordblks, "mallinfo2 counts 64 KB in use");
  for (auto& b : blocks) std::free(b);

  // arc4random (2.36): kernel randomness.
  std::set<uint32_t> seen;
  for (int i = 0; i < 16; ++i) seen.insert(arc4random());
  check(seen.size() > 8, "arc4random gives distinct values");

  // __libc_single_threaded (2.32): ours says "maybe several threads", always safe.
  check(__libc_single_threaded == 0, "__libc_single_threaded is the conservative 0");

  // pthread_* and dl* (2.34 moved them into libc; we bind to libpthread/libdl's versions).
  int counter = 0;
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 1 << 20);
  check(pthread_create(&thread, &attr, count_to, &counter) == 0 && pthread_join(thread, nullptr) == 0 && counter == 1,
        "pthread_create/join");
  sigset_t block, current;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  check(pthread_sigmask(SIG_BLOCK, &block, nullptr) == 0 && pthread_sigmask(SIG_SETMASK, nullptr, &current) == 0 &&
            sigismember(&current, SIGUSR1) == 1,
        "pthread_sigmask");
  void* libm = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
  check(libm != nullptr && dlsym(libm, "cos") != nullptr, "dlopen/dlsym");
  Dl_info info;
  check(dladdr(reinterpret_cast<void*>(&run_compat), &info) != 0, "dladdr");
  if (libm) dlclose(libm);

  // exp/exp2/log/log2/pow (2.29 versions on new glibc; the 2.2.5 ones here): same values.
  volatile double one = 1.0, three = 3.0, eight = 8.0, two = 2.0, ten = 10.0;
  check(std::fabs(std::exp(one) - M_E) < 1e-15 && std::exp2(three) == 8.0, "exp/exp2");
  check(std::fabs(std::log(M_E * one) - 1.0) < 1e-15 && std::log2(eight) == 3.0, "log/log2");
  check(std::pow(two, ten) == 1024.0, "pow");

  std::printf("compat: %d failed\n", failures);
  return failures == 0 ? 0 : 1;
}

int run_jit() {
  proteus::CompileRequest request;
  request.source = R"(
#include <cmath>
#include <vector>
extern "C" double sum_of_roots(int n) {
  std::vector<double> squares;
  for (int i = 1; i <= n; ++i) squares.push_back(double(i) * i);
  double sum = 0;
  for (double s : squares) sum += std::sqrt(s);
  return sum;
}
)";
  try {
    auto module = proteus::compile(request);
    auto fn = reinterpret_cast<double (*)(int)>(module->address("sum_of_roots"));
    double got = fn(10);
    check(got == 55.0, "sum_of_roots(10) == 55 (got " + std::to_string(got) + ")");
  } catch (const std::exception& e) {
    check(false, std::string("compiling <cmath>/<vector> code: ") + e.what());
  }

  proteus::CompileRequest bad;
  bad.source = "extern \"C\" int broken( { return 1; }\n";
  try {
    proteus::compile(bad);
    check(false, "a syntax error raises CompileError");
  } catch (const proteus::CompileError& e) {
    check(std::strstr(e.what(), "error:") != nullptr, "a syntax error raises CompileError with clang's diagnostic");
  }

  proteus::EngineStats stats = proteus::engine_stats();
  std::printf("engine: build=%s disk_hits=%llu disk_misses=%llu\n", proteus::build_mode(),
              static_cast<unsigned long long>(stats.disk_hits), static_cast<unsigned long long>(stats.disk_misses));
  std::printf("jit: %d failed\n", failures);
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "compat") return run_compat();
  if (mode == "jit") return run_jit();
  std::fprintf(stderr, "usage: %s compat|jit\n", argv[0]);
  return 2;
}
