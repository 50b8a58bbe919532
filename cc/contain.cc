// Compile work runs contained (ARCHITECTURE 6, "Containment and cancellation"): on a thread of
// its own with a large stack, under LLVM's crash recovery, while the caller waits and can give up.
#include <link.h>
#include <pthread.h>
#include <signal.h>
#include <ucontext.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <thread>
#include <unistd.h>
#include <vector>

#include "internal.h"
#include "object_cache.h"
#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/thread.h"

namespace proteus {
namespace {

constexpr unsigned kStackBytes = 64u << 20;      // deeply nested sources recurse deeply in clang
constexpr size_t kSignalStackBytes = 256u << 10;  // where the crash handler runs on stack overflow
constexpr auto kPollInterval = std::chrono::milliseconds(50);
constexpr int kStoppedCode = 0x70726f;  // HandleExit code of a job stopped at a checkpoint
constexpr auto kStopGrace = std::chrono::milliseconds(500);  // for a given-up job to reach a checkpoint

enum class Outcome { running, finished, failed, crashed };

// One piece of contained work. Shared by the waiting caller and the worker, because the caller may
// stop waiting (Ctrl-C, timeout) and return while the worker is still running.
struct Job {
  std::function<void()> work;  // keeps its result itself (run_contained in internal.h)
  std::string what;  // "compiling source.cpp": for messages
  std::mutex mutex;
  std::condition_variable changed;
  Outcome outcome = Outcome::running;
  std::exception_ptr failure;
  std::atomic<bool> stop{false};  // the caller gave up: stop at the next checkpoint
  pthread_t thread{};             // the worker (valid while outcome == running)
  std::chrono::steady_clock::time_point given_up;
};

// Per worker thread: the job it runs and why it left its crash-recovery context early.
thread_local Job* current_job = nullptr;
thread_local std::string exit_reason;
thread_local bool exit_out_of_memory = false;

std::atomic<int> running_jobs{0};
std::atomic<bool> process_exiting{false};
std::atomic<bool (*)()> wait_hook{nullptr};
std::new_handler previous_new_handler = nullptr;

// Leaves the current job through its crash-recovery context (a longjmp to the worker's RunSafely:
// the job's memory is leaked, the process goes on). Outside a job, what LLVM used to do.
[[noreturn]] void leave_job(std::string reason, bool out_of_memory) {
  if (llvm::CrashRecoveryContext* context = llvm::CrashRecoveryContext::GetCurrent()) {
    exit_reason = std::move(reason);
    exit_out_of_memory = out_of_memory;
    context->HandleExit(1);
  }
  if (out_of_memory) throw std::bad_alloc();
  throw CompileError(reason);
}

void on_fatal_error(void*, const char* reason, bool) { leave_job(std::string("LLVM reported a fatal error: ") + reason, false); }
void on_bad_alloc(void*, const char* reason, bool) { leave_job(reason ? reason : "out of memory", true); }

// operator new failing inside a job leaves the job; elsewhere it behaves as it did before us.
void on_new_failure() {
  if (llvm::CrashRecoveryContext::GetCurrent()) leave_job("out of memory (operator new)", true);
  if (previous_new_handler) return previous_new_handler();
  throw std::bad_alloc();
}

// glibc's on_exit: at process exit, jobs still running would touch LLVM's global state while its
// static destructors run. Ask them to stop, give them a moment, else end the process now with its
// exit status (the destructors skipped) rather than crash in them.
void at_process_exit(int status, void*) {
  process_exiting = true;
  for (int i = 0; i < 40 && running_jobs.load() > 0; ++i) usleep(50000);
  if (running_jobs.load() > 0) {
    fflush(nullptr);
    _exit(status);
  }
}

// Stack overflow: the kernel can deliver SIGSEGV only on an alternate stack. LLVM's recovery
// handlers are installed without SA_ONSTACK; add it (same handlers, same masks).
void run_crash_handlers_on_signal_stack() {
  for (int signal_number : {SIGSEGV, SIGBUS}) {
    struct sigaction action;
    if (sigaction(signal_number, nullptr, &action) == 0 && !(action.sa_flags & SA_ONSTACK)) {
      action.sa_flags |= SA_ONSTACK;
      sigaction(signal_number, &action, nullptr);
    }
  }
}

struct SignalStack {
  std::unique_ptr<char[]> memory{new char[kSignalStackBytes]};
  SignalStack() {
    stack_t stack{};
    stack.ss_sp = memory.get();
    stack.ss_size = kSignalStackBytes;
    sigaltstack(&stack, nullptr);
  }
  ~SignalStack() {
    stack_t off{};
    off.ss_flags = SS_DISABLE;
    sigaltstack(&off, nullptr);
  }
};

const char* signal_name(int number) {
  switch (number) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGABRT: return "SIGABRT";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGTRAP: return "SIGTRAP";
  }
  return "a signal";
}

// Stopping a given-up job that reaches no checkpoint (clang's parser backtracking exponentially, a
// long constexpr evaluation): after kStopGrace the reaper thread signals the worker, and the signal
// handler leaves the job as a checkpoint would, but only if the worker was interrupted in this
// library's own code: never inside the C library (malloc's locks), the kernel's vDSO or another
// library; there it returns and the next signal (10 ms later) tries again.
int stop_signal = 0;  // 0: not installed (the application handles that signal itself)
uintptr_t own_text_begin = 0, own_text_end = 0;

// The executable segment of the object holding this code (the backend's one shared object).
void find_own_text() {
  dl_iterate_phdr([](dl_phdr_info* info, size_t, void*) -> int {
    auto here = reinterpret_cast<uintptr_t>(&find_own_text);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& segment = info->dlpi_phdr[i];
      uintptr_t begin = info->dlpi_addr + segment.p_vaddr;
      if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) && here >= begin && here < begin + segment.p_memsz) {
        own_text_begin = begin;
        own_text_end = begin + segment.p_memsz;
        return 1;
      }
    }
    return 0;
  }, nullptr);
}

void on_stop_signal(int, siginfo_t*, void* context) {
  Job* job = current_job;
  if (!job || !(job->stop.load() || process_exiting.load())) return;
  uintptr_t pc = static_cast<uintptr_t>(static_cast<ucontext_t*>(context)->uc_mcontext.gregs[REG_RIP]);
  if (pc < own_text_begin || pc >= own_text_end) return;
  if (llvm::CrashRecoveryContext* recovery = llvm::CrashRecoveryContext::GetCurrent()) recovery->HandleExit(kStoppedCode);
}

void install_stop_signal() {
  find_own_text();
  int candidate = SIGRTMAX - 2;
  struct sigaction current;
  if (own_text_end == 0 || sigaction(candidate, nullptr, &current) != 0 || current.sa_handler != SIG_DFL) return;
  struct sigaction action{};
  action.sa_sigaction = on_stop_signal;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(candidate, &action, nullptr) == 0) stop_signal = candidate;
}

// Never destroyed: the reaper runs until the process ends, static destructors included.
std::mutex& given_up_mutex = *new std::mutex;
std::vector<std::shared_ptr<Job>>& given_up_jobs = *new std::vector<std::shared_ptr<Job>>;

void reap_given_up_jobs() {
  for (;;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    std::lock_guard<std::mutex> lock(given_up_mutex);
    auto now = std::chrono::steady_clock::now();
    for (auto it = given_up_jobs.begin(); it != given_up_jobs.end();) {
      Job& job = **it;
      std::lock_guard<std::mutex> job_lock(job.mutex);  // the worker is alive while its outcome is unset
      if (job.outcome != Outcome::running) {
        it = given_up_jobs.erase(it);
        continue;
      }
      if ((now - job.given_up > kStopGrace || process_exiting.load()) && stop_signal) pthread_kill(job.thread, stop_signal);
      ++it;
    }
  }
}

// The waiting thread stops waiting (not holding job->mutex: the reaper takes it after given_up_mutex).
void give_up(const std::shared_ptr<Job>& job) {
  job->stop = true;
  job->given_up = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(given_up_mutex);
  static std::once_flag reaper_started;
  std::call_once(reaper_started, [] { std::thread(reap_given_up_jobs).detach(); });
  given_up_jobs.push_back(job);
}

// The worker: runs the job under crash recovery and records how it ended.
void run_job(const std::shared_ptr<Job>& job) {
  SignalStack signal_stack;
  {
    std::lock_guard<std::mutex> lock(job->mutex);
    job->thread = pthread_self();
  }
  current_job = job.get();
  exit_reason.clear();
  exit_out_of_memory = false;
  std::exception_ptr failure;
  llvm::CrashRecoveryContext context;
  bool returned = context.RunSafely([&] {
    try {
      job->work();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  current_job = nullptr;
  Outcome outcome = Outcome::finished;
  if (!returned) {
    outcome = Outcome::crashed;
    if (context.RetCode == kStoppedCode)
      failure = std::make_exception_ptr(CompileCancelled(job->what + ": stopped"));
    else if (exit_out_of_memory)
      failure = std::make_exception_ptr(CompileOutOfMemory("out of memory while " + job->what + ": " + exit_reason));
    else if (!exit_reason.empty())
      failure = std::make_exception_ptr(CompileError(exit_reason + " (while " + job->what + ")"));
    else
      failure = std::make_exception_ptr(CompileError(
          "the compiler crashed (" + std::string(signal_name(context.RetCode - 128)) + ") while " + job->what +
          "; the process is unaffected, but this input cannot be compiled (please report it with the source)"));
  } else if (failure) {
    outcome = Outcome::failed;
  }
  {
    std::lock_guard<std::mutex> lock(job->mutex);
    job->outcome = outcome;
    job->failure = failure;
  }
  job->changed.notify_all();
  running_jobs--;
}

}  // namespace

void install_engine_handlers() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
    llvm::install_fatal_error_handler(on_fatal_error, nullptr);
    llvm::install_bad_alloc_error_handler(on_bad_alloc, nullptr);
    previous_new_handler = std::set_new_handler(on_new_failure);
    llvm::CrashRecoveryContext::Enable();
    run_crash_handlers_on_signal_stack();
    install_stop_signal();
    on_exit(at_process_exit, nullptr);
  });
}

void fail_contained(const std::string& reason) { leave_job(reason, false); }

void set_wait_hook(bool (*hook)()) { wait_hook = hook; }

void checkpoint() {
  if (current_job && (current_job->stop.load(std::memory_order_relaxed) || process_exiting.load(std::memory_order_relaxed)))
    if (llvm::CrashRecoveryContext* context = llvm::CrashRecoveryContext::GetCurrent()) context->HandleExit(kStoppedCode);
}

void run_contained_job(std::function<void()> work, const std::string& what, double timeout_seconds) {
  install_engine_handlers();
  auto job = std::make_shared<Job>();
  job->work = std::move(work);
  job->what = what;
  running_jobs++;
  try {
    llvm::thread worker(std::optional<unsigned>(kStackBytes), [job] { run_job(job); });
    worker.detach();
  } catch (...) {
    running_jobs--;
    throw;
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(
                      timeout_seconds > 0 ? timeout_seconds : 1e9));
  std::unique_lock<std::mutex> lock(job->mutex);
  // wait_until on the system clock: a steady-clock wait needs pthread_cond_clockwait (glibc 2.30),
  // newer than the manylinux_2_28 baseline. The timeout itself is measured on the steady clock.
  auto finished = [&] { return job->outcome != Outcome::running; };
  while (!job->changed.wait_until(lock, std::chrono::system_clock::now() + kPollInterval, finished)) {
    bool timed_out = timeout_seconds > 0 && std::chrono::steady_clock::now() >= deadline;
    bool interrupted = false;
    if (bool (*hook)() = wait_hook.load(); hook && !timed_out) {
      lock.unlock();
      interrupted = hook();
      lock.lock();
      if (job->outcome != Outcome::running && !interrupted) break;
    }
    if (!timed_out && !interrupted && !process_exiting.load()) continue;
    lock.unlock();
    give_up(job);
    if (timed_out) {
      char seconds[32];
      snprintf(seconds, sizeof seconds, "%g", timeout_seconds);
      throw CompileTimeout(what + " did not finish within timeout=" + seconds + " s; it was cancelled");
    }
    throw CompileCancelled(what + (interrupted ? ": interrupted" : ": the process is exiting"));
  }
  if (job->failure) std::rethrow_exception(job->failure);
}

void run_with_large_stack(const std::function<void()>& fn) {
  std::exception_ptr failure;
  llvm::thread worker(std::optional<unsigned>(kStackBytes), [&] {
    try {
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  worker.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace proteus
