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

#include "linux/init_protocol.h"

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "kbatch-init makes its system calls directly; add this architecture's calling convention"
#endif

namespace {

using kbatch::runner::core::kForwardedSignals;
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

/// The kernel's siginfo: 128 bytes, si_code after si_signo and si_errno.
struct KernelSignalInfo {
  int signo;
  int error;
  int code;
  int rest[29];
};
static_assert(sizeof(KernelSignalInfo) == 128);

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
  for (;;) {
    KernelSignalInfo info{};
    long signal_number = systemCall(SYS_rt_sigtimedwait, reinterpret_cast<long>(&waited),
                                    reinterpret_cast<long>(&info), 0, sizeof waited);
    if (signal_number < 0) continue;  // EINTR
    if (signal_number != SIGCHLD) {
      // A signal the terminal sent (SI_KERNEL) went to the whole foreground process group, the
      // job included; relaying it would deliver it twice.
      if (info.code != SI_KERNEL) systemCall(SYS_kill, job, signal_number);
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
