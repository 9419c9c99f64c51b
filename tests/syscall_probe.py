"""What a process may ask of the kernel, probed from inside a sandbox or a container.

`SOURCE` is a self-contained Python module (standard library only, x86_64 system call
numbers) that runs as a function's handler (`probe(event, context)`) or as a script
(printing JSON). Each forbidden call runs in a child of its own, so one that succeeds (a new
user namespace) cannot change what the next one sees. `FORBIDDEN` is what berth's seccomp
profile must answer with EPERM, `ENOSYS` with ENOSYS.
"""
from __future__ import annotations

import platform

import pytest

needs_x86_64 = pytest.mark.skipif(platform.machine() != "x86_64",
                                  reason="the probe uses x86_64 system call numbers")

FORBIDDEN = ("unshare_user", "unshare_user_mount", "clone_user", "setns", "mount", "bpf",
             "keyctl", "add_key", "perf_event_open", "userfaultfd", "ptrace_parent",
             "io_uring_setup", "kexec_load", "init_module", "swapon", "reboot")
ENOSYS = ("clone3",)

SOURCE = r'''
import ctypes, errno, json, os, subprocess, sys, threading

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x20000, 17
CALLS = {
    "unshare_user": lambda: libc.unshare(CLONE_NEWUSER),
    "unshare_user_mount": lambda: libc.unshare(CLONE_NEWUSER | CLONE_NEWNS),
    "clone_user": lambda: libc.syscall(56, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0),
    "setns": lambda: libc.setns(os.open("/proc/self/ns/uts", os.O_RDONLY), 0),
    "mount": lambda: libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None),
    "bpf": lambda: libc.syscall(321, 0, 0, 0),
    "keyctl": lambda: libc.syscall(250, 0, 0, 0, 0, 0),
    "add_key": lambda: libc.syscall(248, b"user", b"k", b"v", 1, -2),
    "perf_event_open": lambda: libc.syscall(298, 0, 0, -1, -1, 0),
    "userfaultfd": lambda: libc.syscall(323, 0),
    "ptrace_parent": lambda: libc.syscall(101, 0x4206, os.getppid(), 0, 0),  # SEIZE
    "io_uring_setup": lambda: libc.syscall(425, 1, 0),
    "kexec_load": lambda: libc.syscall(246, 0, 0, 0, 0),
    "init_module": lambda: libc.syscall(175, 0, 0, b""),
    "swapon": lambda: libc.syscall(167, b"/nonexistent", 0),
    "reboot": lambda: libc.syscall(169, 0, 0, 0, 0),
    "clone3": lambda: libc.syscall(435, 0, 0),
}


def _in_child(call):
    """'ok' or the errno name of one call, made in a child that exits right after."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        rc = call()
        os.write(w, b"ok" if rc >= 0 else errno.errorcode[ctypes.get_errno()].encode())
        os._exit(0)
    os.close(w)
    said = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return said or "died"


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return line.split()[1]
    return None


def probe(event=None, context=None):
    out = {name: _in_child(call) for name, call in CALLS.items()}
    out["Seccomp"], out["NoNewPrivs"] = _status("Seccomp"), _status("NoNewPrivs")
    box = []
    thread = threading.Thread(target=lambda: box.append("thread ran"))
    thread.start()
    thread.join()
    out["thread"] = box[0]
    out["subprocess"] = subprocess.run(["/bin/sh", "-c", "echo spawned"], capture_output=True,
                                       text=True).stdout.strip()
    return out


if __name__ == "__main__":
    print(json.dumps(probe()))
'''


def assert_sealed(found: dict[str, str]) -> None:
    """What berth's seccomp profile answers, and what ordinary programs still can do."""
    assert {k: found[k] for k in FORBIDDEN} == {k: "EPERM" for k in FORBIDDEN}, found
    assert {k: found[k] for k in ENOSYS} == {k: "ENOSYS" for k in ENOSYS}, found
    assert (found["Seccomp"], found["NoNewPrivs"]) == ("2", "1"), found
    assert (found["thread"], found["subprocess"]) == ("thread ran", "spawned"), found
