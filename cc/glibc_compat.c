/* Definitions of the glibc symbols newer than 2.28 that the engine, Debian's LLVM 22 archives and
 * GCC 12's libstdc++.a reference, so the shared objects we ship bind only to glibc <= 2.28
 * (manylinux_2_28; docs/ARCHITECTURE.md). Everything else resolves to an older symbol version of
 * the link stubs (pthread_*, dl*, exp/log/pow...) or to libc_nonshared.a's wrappers (stat -> __xstat).
 *
 * Each definition is hidden (-fvisibility=hidden and the version scripts) and must be correct on old
 * and new glibc alike; tests/manylinux/engine_driver.cc checks each on glibc 2.36 and 2.31. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/types.h>
#include <unistd.h>

/* glibc 2.32: nonzero while the process has a single thread. libstdc++ reads it to skip atomic
 * reference counting; 0 ("maybe several threads") is always correct, merely never the shortcut. */
char __libc_single_threaded = 0;

/* glibc 2.33: mallinfo with size_t fields (LLVM's Process::GetMallocUsage). The real one where the
 * C library has it; else mallinfo's int fields, widened (exact below 2 GiB, as mallinfo itself). */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct mallinfo2 mallinfo2(void) {
  typedef struct mallinfo2 (*mallinfo2_fn)(void);
  mallinfo2_fn real = (mallinfo2_fn)dlsym(RTLD_DEFAULT, "mallinfo2");
  if (real && real != mallinfo2) return real();
  struct mallinfo old = mallinfo();
  struct mallinfo2 info = {
      .arena = (unsigned)old.arena,       .ordblks = (unsigned)old.ordblks,   .smblks = (unsigned)old.smblks,
      .hblks = (unsigned)old.hblks,       .hblkhd = (unsigned)old.hblkhd,     .usmblks = (unsigned)old.usmblks,
      .fsmblks = (unsigned)old.fsmblks,   .uordblks = (unsigned)old.uordblks, .fordblks = (unsigned)old.fordblks,
      .keepcost = (unsigned)old.keepcost,
  };
  return info;
}

/* glibc 2.36: 32 random bits from the kernel's CSPRNG (libstdc++'s std::random_device), as glibc's
 * own arc4random gives: getrandom(2) (glibc 2.25), else /dev/urandom on kernels without it; like
 * glibc's, it ends the process rather than return bits that are not random. */
static int fill_random(unsigned char* out, size_t size) {
  while (size > 0) {
    ssize_t got = getrandom(out, size, 0);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    out += got;
    size -= (size_t)got;
  }
  if (size == 0) return 1;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  while (size > 0) {
    ssize_t got = read(fd, out, size);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    out += got;
    size -= (size_t)got;
  }
  close(fd);
  return size == 0;
}

uint32_t arc4random(void) {
  uint32_t value;
  if (!fill_random((unsigned char*)&value, sizeof value)) abort();
  return value;
}
