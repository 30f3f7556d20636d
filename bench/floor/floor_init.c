// floor_init: the separate init of runner_floor --init: reaps every child and exits with the
// status of the job (PID 2), as kbatch-init does, and like it freestanding (no libc, raw system
// calls), since it runs inside the image. Built with -nostdlib -static.
#include <sys/syscall.h>

static long call4(long number, long a, long b, long c, long d) {
  long result;
  register long r10 __asm__("r10") = d;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10)
                   : "rcx", "r11", "memory");
  return result;
}

void _start(void) {
  int status = 0, job_status = 0;
  long reaped;
  while ((reaped = call4(SYS_wait4, -1, (long)&status, 0, 0)) > 0) {
    if (reaped == 2) job_status = status;
  }
  int signal = job_status & 0x7f;
  call4(SYS_exit_group, signal != 0 ? 128 + signal : (job_status >> 8) & 0xff, 0, 0, 0);
  for (;;) {
  }
}
