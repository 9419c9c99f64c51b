"""What sandboxes and containers may ask of the kernel: berth's seccomp profile, written once.

An allow-list in the spirit of Docker's default profile, as an OCI `linux.seccomp` object: the
runc driver puts it in every container's config.json, and the function zygote compiles the
same object with libseccomp (berth_runtime/seccomp.py) into the filter every function sandbox
gets. Three answers:

- the system calls ordinary programs make (files, memory, processes and threads, signals,
  time, sockets, IPC, and the ones a container's root needs with Docker's capabilities:
  chown, setuid, chroot, mknod) are allowed; `clone` only without namespace flags, and
  `personality` only with the values programs use;
- the calls below (`REFUSED`) fail with EPERM: new namespaces, mounts, kernel modules and
  kexec, bpf, perf, keyrings, userfaultfd, io_uring, tracing and reading other processes,
  the clock, swap, reboot, and the rest of the host's administration;
- anything else, including calls newer than this list, fails with ENOSYS, as on a kernel
  without them, so libraries fall back (glibc's `clone3`, always answered ENOSYS, falls
  back to `clone`, whose flags the filter can see).
"""
from __future__ import annotations

from typing import Any

EPERM, ENOSYS = 1, 38
# CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET: what `clone` may not ask.
CLONE_NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                    0x40000000)
# personality(2) values programs set or query: Linux, 32-bit, UNAME26, both, and the query.
PERSONALITIES = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

ALLOWED = (
    # files and descriptors
    "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2",
    "pwritev2", "open", "openat", "openat2", "creat", "close", "close_range", "lseek",
    "_llseek", "stat", "fstat", "lstat", "newfstatat", "fstatat64", "stat64", "fstat64",
    "lstat64", "statx", "statfs", "fstatfs", "statfs64", "fstatfs64", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat", "getdents", "getdents64", "mkdir", "mkdirat",
    "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
    "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown",
    "lchown", "fchownat", "chown32", "fchown32", "lchown32", "truncate", "ftruncate",
    "truncate64", "ftruncate64", "fallocate", "fadvise64", "fadvise64_64", "readahead",
    "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "flock", "fcntl", "fcntl64",
    "dup", "dup2", "dup3", "pipe", "pipe2", "sendfile", "sendfile64", "splice", "tee",
    "vmsplice", "copy_file_range", "utime", "utimes", "utimensat", "futimesat", "chdir",
    "fchdir", "getcwd", "umask", "mknod", "mknodat", "chroot", "ioctl", "getxattr",
    "lgetxattr", "fgetxattr", "setxattr", "lsetxattr", "fsetxattr", "listxattr", "llistxattr",
    "flistxattr", "removexattr", "lremovexattr", "fremovexattr", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "memfd_create",
    # waiting for descriptors, asynchronous I/O
    "select", "_newselect", "pselect6", "poll", "ppoll", "epoll_create", "epoll_create1",
    "epoll_ctl", "epoll_wait", "epoll_pwait", "epoll_pwait2", "eventfd", "eventfd2",
    "signalfd", "signalfd4", "timerfd_create", "timerfd_settime", "timerfd_gettime",
    "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
    # memory
    "brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "pkey_mprotect", "pkey_alloc",
    "pkey_free", "madvise", "mincore", "mlock", "mlock2", "munlock", "mlockall", "munlockall",
    "msync", "remap_file_pages", "membarrier", "get_mempolicy", "set_mempolicy", "mbind",
    # processes and threads
    "fork", "vfork", "execve", "execveat", "exit", "exit_group", "wait4", "waitid", "waitpid",
    "kill", "tkill", "tgkill", "getpid", "getppid", "gettid", "getpgid", "setpgid", "getpgrp",
    "getsid", "setsid", "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid",
    "getgroups", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
    "setgroups", "setfsuid", "setfsgid", "getuid32", "geteuid32", "getgid32", "getegid32",
    "getresuid32", "getresgid32", "getgroups32", "setuid32", "setgid32", "setreuid32",
    "setregid32", "setresuid32", "setresgid32", "setgroups32", "setfsuid32", "setfsgid32",
    "capget", "capset", "prctl", "arch_prctl", "set_tid_address", "set_robust_list",
    "get_robust_list", "rseq", "futex", "futex_time64", "futex_waitv", "futex_wake",
    "futex_wait", "futex_requeue", "set_thread_area", "get_thread_area", "pidfd_open",
    "pidfd_send_signal", "seccomp", "landlock_create_ruleset", "landlock_add_rule",
    "landlock_restrict_self",
    # scheduling and limits
    "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getparam",
    "sched_setparam", "sched_getscheduler", "sched_setscheduler", "sched_get_priority_max",
    "sched_get_priority_min", "sched_rr_get_interval", "sched_getattr", "sched_setattr",
    "getpriority", "setpriority", "ioprio_get", "ioprio_set", "getrlimit", "setrlimit",
    "ugetrlimit", "prlimit64", "getrusage", "times", "uname", "sysinfo", "getcpu", "getrandom",
    # signals and time
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigsuspend", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "sigreturn",
    "restart_syscall", "pause", "nanosleep", "clock_nanosleep", "clock_gettime",
    "clock_getres", "gettimeofday", "time", "alarm", "getitimer", "setitimer", "timer_create",
    "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete",
    # sockets
    "socket", "socketpair", "socketcall", "bind", "connect", "listen", "accept", "accept4",
    "getsockname", "getpeername", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg",
    "recvmmsg", "shutdown", "setsockopt", "getsockopt",
    # System V and POSIX IPC (per IPC namespace)
    "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
    "shmget", "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr",
)

REFUSED = (
    # namespaces and mounts (a sandbox's own are set up before the filter)
    "unshare", "setns", "mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig",
    "fsmount", "fspick", "open_tree", "move_mount", "mount_setattr",
    # the kernel itself: modules, kexec, eBPF, perf, keyrings, page-fault handlers, io_uring
    "init_module", "finit_module", "delete_module", "create_module", "query_module",
    "get_kernel_syms", "kexec_load", "kexec_file_load", "bpf", "perf_event_open", "keyctl",
    "add_key", "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
    # other processes: tracing, reading and writing their memory, taking their descriptors
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "move_pages",
    "migrate_pages",
    # the host: power, swap, clock, accounting, quotas, kernel log, devices, file handles
    "reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_settime64",
    "clock_adjtime", "clock_adjtime64", "adjtimex", "stime", "acct", "quotactl", "quotactl_fd",
    "syslog", "vhangup", "iopl", "ioperm", "modify_ldt", "open_by_handle_at",
    "name_to_handle_at", "fanotify_init", "lookup_dcookie", "nfsservctl", "uselib", "ustat",
    "sysfs", "_sysctl", "vm86", "vm86old", "sethostname", "setdomainname",
)


def _arg(index: int, value: int, op: str, value_two: int = 0) -> dict[str, Any]:
    return {"index": index, "value": value, "valueTwo": value_two, "op": op}


def profile() -> dict[str, Any]:
    """The OCI `linux.seccomp` object (runtime-spec 1.0.2, with defaultErrnoRet)."""
    syscalls: list[dict[str, Any]] = [
        {"names": list(ALLOWED), "action": "SCMP_ACT_ALLOW"},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [_arg(0, sum(CLONE_NAMESPACES), "SCMP_CMP_MASKED_EQ", 0)]},
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": ENOSYS},
        {"names": list(REFUSED), "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM},
    ]
    # One rule per value: a rule's conditions all hold at once, rules are alternatives.
    syscalls += [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": EPERM,
                  "args": [_arg(0, flag, "SCMP_CMP_MASKED_EQ", flag)]}
                 for flag in CLONE_NAMESPACES]
    syscalls += [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                  "args": [_arg(0, value, "SCMP_CMP_EQ")]} for value in PERSONALITIES]
    return {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": ENOSYS,
            "architectures": [], "syscalls": syscalls}
