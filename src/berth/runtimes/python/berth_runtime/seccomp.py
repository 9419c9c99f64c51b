"""A seccomp filter for sandboxes, compiled once by the zygote and installed by each sandbox.

`compile_profile` turns an OCI `linux.seccomp` object (the worker's, berth/agent/seccomp.py)
into a BPF program with libseccomp, through ctypes, the way runc compiles the same object for
containers: only the native architecture (a call through another ABI kills the process),
rules laid out as a binary tree so a call costs a few comparisons. `install` loads that
program into the calling process with prctl(2); the process must have set no_new_privs. It
costs one system call and the kernel's copy of the program, so a fork pays nothing else.
Standard library only: this runs on every Python a function may use.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any, Dict, List, Optional

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SCMP_ACT_ALLOW, SCMP_ACT_ERRNO = 0x7FFF0000, 0x00050000
SCMP_FLTATR_CTL_NNP, SCMP_FLTATR_CTL_OPTIMIZE = 3, 8
COMPARISONS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
               "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
_NR_SCMP_ERROR = -1
_libc = ctypes.CDLL(None, use_errno=True)


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Program:
    """A compiled filter, kept in memory every forked child shares."""

    def __init__(self, bpf: bytes) -> None:
        self.bpf = bpf
        self._buffer = ctypes.create_string_buffer(bpf, len(bpf))
        self._fprog = SockFprog(len(bpf) // 8, ctypes.cast(self._buffer, ctypes.c_void_p))

    def install(self) -> None:
        """Filter this process (and whatever it starts) from now on; no_new_privs first."""
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self._fprog), 0, 0):
            err = ctypes.get_errno()
            raise OSError(err, "seccomp: %s" % os.strerror(err))


def _action(rule: Dict[str, Any]) -> int:
    if rule["action"] == "SCMP_ACT_ALLOW":
        return SCMP_ACT_ALLOW
    if rule["action"] == "SCMP_ACT_ERRNO":
        return SCMP_ACT_ERRNO | (int(rule.get("errnoRet", 1)) & 0xFFFF)
    raise ValueError("unsupported seccomp action %r" % rule["action"])


def _library() -> Any:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    return lib


def compile_profile(profile: Dict[str, Any]) -> Program:
    """The BPF program of an OCI seccomp profile. Names this libseccomp does not know are
    left to the default action, as runc does. Raises OSError when it cannot be built (no
    libseccomp on the host)."""
    lib = _library()
    default = _action({"action": profile["defaultAction"],
                       "errnoRet": profile.get("defaultErrnoRet", 1)})
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0)   # the sandbox sets it itself
        lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)   # binary tree; 2.5+ only
        for rule in profile["syscalls"]:
            action = _action(rule)
            args: List[Dict[str, Any]] = rule.get("args") or []
            cmps = (ArgCmp * max(len(args), 1))(*[
                ArgCmp(a["index"], COMPARISONS[a["op"]], a["value"], a.get("valueTwo", 0))
                for a in args])
            for name in rule["names"]:
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == _NR_SCMP_ERROR or action == default:
                    continue
                rc = lib.seccomp_rule_add_array(ctx, action, nr, len(args), cmps)
                if rc < 0:
                    raise OSError(-rc, "seccomp rule for %s: %s" % (name, os.strerror(-rc)))
        fd = os.memfd_create("berth-seccomp", os.MFD_CLOEXEC)
        try:
            rc = lib.seccomp_export_bpf(ctx, fd)
            if rc < 0:
                raise OSError(-rc, "seccomp_export_bpf: %s" % os.strerror(-rc))
            size = os.lseek(fd, 0, os.SEEK_END)
            bpf = os.pread(fd, size, 0)
        finally:
            os.close(fd)
    finally:
        lib.seccomp_release(ctx)
    return Program(bpf)


def try_compile(profile: Optional[Dict[str, Any]]) -> "tuple[Optional[Program], str]":
    """(program, "") or (None, why there is none)."""
    if not profile:
        return None, "no profile given"
    try:
        return compile_profile(profile), ""
    except (OSError, ValueError, KeyError) as exc:
        return None, str(exc) or type(exc).__name__
