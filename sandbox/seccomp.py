"""A hand-assembled seccomp-BPF filter for the sandbox, handed to bubblewrap via `--seccomp FD`.

Why by hand: libseccomp's Python bindings are rarely installed, and the filter we need is small:
deny the syscalls that let code escape or attack the kernel (ptrace, mount, bpf, keyctl, new
namespaces, io_uring ...) and every socket family except AF_UNIX. Namespaces already cut the
network; the filter is the second wall. Only x86_64 is encoded; on other architectures
`build_filter()` returns None and the isolation report says seccomp is unavailable.
"""
from __future__ import annotations

import errno
import platform
import struct

# struct sock_filter opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000
_AF_UNIX = 1
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

# seccomp_data offsets: nr (0), arch (4), args[0] low 32 bits (16, little endian)
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16

X86_64_DENIED = {
    "ptrace": 101, "syslog": 103, "personality": 135, "vhangup": 153, "pivot_root": 155,
    "adjtimex": 159, "chroot": 161, "acct": 163, "settimeofday": 164, "mount": 165, "umount2": 166,
    "swapon": 167, "swapoff": 168, "reboot": 169, "init_module": 175, "delete_module": 176,
    "quotactl": 179, "clock_settime": 227, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "perf_event_open": 298, "fanotify_init": 300,
    "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308, "process_vm_readv": 310,
    "process_vm_writev": 311, "kcmp": 312, "finit_module": 313, "kexec_file_load": 320, "bpf": 321,
    "userfaultfd": 323, "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
    "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442,
}
_X86_64_SOCKET, _X86_64_SOCKETPAIR, _X86_64_CLONE, _X86_64_CLONE3 = 41, 53, 56, 435


def _insn(code: int, k: int, jt: int | str = 0, jf: int | str = 0) -> tuple:
    return (code, jt, jf, k)


def _assemble(program: list) -> bytes:
    """Resolve string jump targets (labels) into relative offsets and pack to sock_filter[]."""
    labels: dict[str, int] = {}
    insns: list[tuple] = []
    for item in program:
        if isinstance(item, str):
            labels[item] = len(insns)
        else:
            insns.append(item)
    out = bytearray()
    for pc, (code, jt, jf, k) in enumerate(insns):
        rel = [labels[j] - pc - 1 if isinstance(j, str) else j for j in (jt, jf)]
        if not all(0 <= r <= 255 for r in rel):
            raise ValueError(f"seccomp jump out of range at {pc}")
        out += struct.pack("=HBBI", code, rel[0], rel[1], k)
    return bytes(out)


def build_filter() -> bytes | None:
    """The filter for this machine's architecture, or None where it is not encoded."""
    if platform.machine() != "x86_64":
        return None
    prog: list = [
        _insn(_LD_W_ABS, _OFF_ARCH),
        _insn(_JEQ_K, _AUDIT_ARCH_X86_64, 1, 0),
        _insn(_RET_K, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFF_NR),
        _insn(_JGE_K, _X32_SYSCALL_BIT, "deny", 0),
        _insn(_JEQ_K, _X86_64_SOCKET, "socket", 0),
        _insn(_JEQ_K, _X86_64_SOCKETPAIR, "socket", 0),
        _insn(_JEQ_K, _X86_64_CLONE, "clone", 0),
        # glibc falls back from clone3 to clone on ENOSYS, where the flags can be inspected
        _insn(_JEQ_K, _X86_64_CLONE3, "enosys", 0),
    ]
    prog += [_insn(_JEQ_K, nr, "deny", 0) for nr in sorted(X86_64_DENIED.values())]
    prog += [
        _insn(_RET_K, _RET_ALLOW),
        "socket",
        _insn(_LD_W_ABS, _OFF_ARG0),
        _insn(_JEQ_K, _AF_UNIX, "allow", "deny"),
        "clone",
        _insn(_LD_W_ABS, _OFF_ARG0),
        _insn(_JSET_K, _CLONE_NAMESPACE_FLAGS, "deny", "allow"),
        "deny",
        _insn(_RET_K, _RET_ERRNO | errno.EPERM),
        "enosys",
        _insn(_RET_K, _RET_ERRNO | errno.ENOSYS),
        "allow",
        _insn(_RET_K, _RET_ALLOW),
    ]
    return _assemble(prog)
