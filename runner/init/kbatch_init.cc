// kbatch-init: PID 1 of every local container. The setup process (runner/src/linux/
// container_init.cc) builds the container inside kbatch's own address space (clone with
// CLONE_VM|CLONE_VFORK, as posix_spawn does), starts the job, and then replaces itself with this
// program, which is all that stays resident.
//
// As PID 1 it forwards the signals kbatch relays to the job (a namespace's init ignores signals
// it has no handler for, so the job itself must not be PID 1: `kill -TERM $$` and abort() must
// work in a job as they do outside), reaps every orphan, and when the job ends reports its wait
// status on the report pipe and exits, upon which the kernel kills whatever is left in the
// namespace. Man: pid_namespaces(7) ("The namespace init process"), rt_sigtimedwait(2), wait4(2).
//
// It is freestanding: no libc, seven system calls made directly. Its start-up is on every job's
// critical path, and a static glibc's alone (TLS set-up, CPU feature probing with cpuid, which
// traps on virtual machines) cost more than the rest of this program (bench/exec_start.sh). Being
// static, it also runs in any image, with or without a libc.
//
// usage (by the setup process only): kbatch-init REPORT_FD JOB_PID
// Inherited: the forwarded signals and SIGCHLD blocked (the mask survives execve), the
// parent-death signal (SIGKILL), no capabilities, no_new_privs, kbatch's seccomp filter not
// loaded (the job has it).

#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "linux/init_protocol.h"

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "kbatch-init makes its system calls directly; add this architecture's calling convention"
#endif

namespace {

using kbatch::runner::core::kForwardedSignals;
using kbatch::runner::core::kForwardHoldMilliseconds;
using kbatch::runner::core::kForwardRequestSignal;
using kbatch::runner::core::Report;

// Linux's system call convention: number and up to four arguments in registers, the result (or
// -errno) in the first return register.
long systemCall(long number, long a = 0, long b = 0, long c = 0, long d = 0) {
#if defined(__x86_64__)
  long result;
  register long r10 asm("r10") = d;
  asm volatile("syscall"
               : "=a"(result)
               : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
               : "rcx", "r11", "memory");
  return result;
#else
  register long x8 asm("x8") = number;
  register long x0 asm("x0") = a;
  register long x1 asm("x1") = b;
  register long x2 asm("x2") = c;
  register long x3 asm("x3") = d;
  asm volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
#endif
}

[[noreturn]] void exitWith(int status) {
  for (;;) systemCall(SYS_exit_group, status);
}

/// The kernel's siginfo: 128 bytes; on LP64 (x86_64 and aarch64 alike) si_signo, si_errno and
/// si_code, then the union aligned to 8 bytes, which for SI_QUEUE holds the sender's pid and uid,
/// then the sigval.
struct KernelSignalInfo {
  int signo;
  int error;
  int code;
  int padding;
  int sender_pid;
  unsigned sender_uid;
  int value;  // sival_int
  int rest[25];
};
static_assert(sizeof(KernelSignalInfo) == 128);

struct KernelTime {
  long seconds;
  long nanoseconds;
};

long monotonicMilliseconds() {
  KernelTime now{};
  systemCall(SYS_clock_gettime, CLOCK_MONOTONIC, reinterpret_cast<long>(&now));
  return now.seconds * 1000 + now.nanoseconds / 1000000;
}

bool isForwarded(long signal_number) {
  for (int forwarded : kForwardedSignals) {
    if (forwarded == signal_number) return true;
  }
  return false;
}

bool parsePositive(const char* text, long* value) {
  long parsed = 0;
  if (*text == '\0') return false;
  for (; *text != '\0'; ++text) {
    if (*text < '0' || *text > '9' || parsed > 100000000) return false;
    parsed = parsed * 10 + (*text - '0');
  }
  *value = parsed;
  return parsed > 0;
}

[[noreturn]] void run(long argc, char** argv) {
  long report_fd = 0, job = 0;
  // Started by hand (it is in libexecdir): refuse, rather than wait forever for a child it lacks.
  if (argc != 3 || !parsePositive(argv[1], &report_fd) || !parsePositive(argv[2], &job) ||
      systemCall(SYS_getpid) != 1) {
    static const char kUsage[] = "kbatch-init: started by kbatch only, as a container's PID 1\n";
    systemCall(SYS_write, 2, reinterpret_cast<long>(kUsage), sizeof kUsage - 1);
    exitWith(125);
  }
  // The job runs as the same uid in the same user namespace: without this it could open
  // /proc/1/mem and forge the report kbatch reads.
  systemCall(SYS_prctl, PR_SET_DUMPABLE, 0);

  unsigned long waited = 1UL << (SIGCHLD - 1);  // the kernel's sigset: one bit per signal
  for (int signal_number : kForwardedSignals) waited |= 1UL << (signal_number - 1);
  waited |= 1UL << (kForwardRequestSignal - 1);
  // Per signal number: when kbatch's request to pass it on falls due (0: none held), and when the
  // signal last reached this process directly (init_protocol.h).
  constexpr int kSignalSlots = 65;
  constexpr long kNever = -1000000;
  long due_at[kSignalSlots] = {};
  long direct_at[kSignalSlots];
  for (long& at : direct_at) at = kNever;
  for (;;) {
    long now = monotonicMilliseconds();
    for (int n = 1; n < kSignalSlots; ++n) {
      if (due_at[n] != 0 && due_at[n] <= now) {
        due_at[n] = 0;
        systemCall(SYS_kill, job, n);
      }
    }
    long wait_ms = -1;
    for (long due : due_at) {
      if (due != 0 && (wait_ms < 0 || due - now < wait_ms)) wait_ms = due - now;
    }
    KernelTime timeout{wait_ms / 1000, (wait_ms % 1000) * 1000000};
    KernelSignalInfo info{};
    long signal_number = systemCall(SYS_rt_sigtimedwait, reinterpret_cast<long>(&waited),
                                    reinterpret_cast<long>(&info),
                                    wait_ms < 0 ? 0 : reinterpret_cast<long>(&timeout),
                                    sizeof waited);
    if (signal_number < 0) continue;  // EINTR, or a held request fell due
    now = monotonicMilliseconds();
    if (signal_number == kForwardRequestSignal) {
      // From kbatch (or from the job, which may signal itself anyway): held, unless the signal
      // has just reached this process directly, and so the job too.
      const long requested = info.value;
      if (info.code == SI_QUEUE && isForwarded(requested) &&
          now - direct_at[requested] > kForwardHoldMilliseconds && due_at[requested] == 0) {
        due_at[requested] = now + kForwardHoldMilliseconds;
      }
      continue;
    }
    if (signal_number != SIGCHLD) {
      // Sent to a set that holds the job as well (its session, process group or cgroup, or the
      // terminal's foreground group, SI_KERNEL): the job has it, so it is not passed on, and a
      // held request for it is dropped.
      direct_at[signal_number] = now;
      due_at[signal_number] = 0;
      continue;
    }
    int status = 0;
    long reaped;
    while ((reaped = systemCall(SYS_wait4, -1, reinterpret_cast<long>(&status), WNOHANG)) > 0) {
      if (reaped != job) continue;  // an orphan the job left
      Report record;
      record.kind = Report::kJobEnded;
      record.detail = status;
      systemCall(SYS_write, report_fd, reinterpret_cast<long>(&record), sizeof record);
      exitWith(0);
    }
  }
}

}  // namespace

// A freestanding program must still provide these four: compilers may emit calls to them (for a
// struct's zero-initialisation, say) whatever -fno-builtin says.
extern "C" {
void* memset(void* destination, int value, decltype(sizeof 0) size) {
  auto* bytes = static_cast<volatile unsigned char*>(destination);
  for (decltype(size) i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>(value);
  return destination;
}
void* memcpy(void* destination, const void* source, decltype(sizeof 0) size) {
  auto* to = static_cast<volatile unsigned char*>(destination);
  const auto* from = static_cast<const unsigned char*>(source);
  for (decltype(size) i = 0; i < size; ++i) to[i] = from[i];
  return destination;
}
void* memmove(void* destination, const void* source, decltype(sizeof 0) size) {
  auto* to = static_cast<volatile unsigned char*>(destination);
  const auto* from = static_cast<const unsigned char*>(source);
  if (to < from) {
    for (decltype(size) i = 0; i < size; ++i) to[i] = from[i];
  } else {
    for (decltype(size) i = size; i > 0; --i) to[i - 1] = from[i - 1];
  }
  return destination;
}
int memcmp(const void* left, const void* right, decltype(sizeof 0) size) {
  const auto* a = static_cast<const unsigned char*>(left);
  const auto* b = static_cast<const unsigned char*>(right);
  for (decltype(size) i = 0; i < size; ++i) {
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  }
  return 0;
}
}

// The entry point: the kernel leaves argc at the stack pointer, argv right above it.
extern "C" [[noreturn]] void kbatchInitEntry(long* stack) {
  run(stack[0], reinterpret_cast<char**>(stack + 1));
}

#if defined(__x86_64__)
asm(".globl _start\n_start:\n  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n"
    "  call kbatchInitEntry\n  hlt\n");
#else
asm(".globl _start\n_start:\n  mov x29, #0\n  mov x30, #0\n  mov x0, sp\n  and sp, x0, #-16\n"
    "  bl kbatchInitEntry\n");
#endif
