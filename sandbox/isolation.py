"""Which isolation layers this machine offers, and how a slot's zygote is launched with them.

Levels, weakest to strongest (each adds to the one before):
  rlimits     rlimits only; programs run as the server's own user. For development only.
  uid         each slot runs as its own unprivileged uid (needs root to switch uids).
  namespaces  + bubblewrap: all namespaces unshared (no network, private PID space with the
              zygote as PID 1, read-only runtimes, size-capped private tmpfs), caps dropped,
              environment cleared. bwrap is started as the slot's uid inside a new user
              namespace; where unprivileged user namespaces are refused (some distributions
              restrict them) a root server starts bwrap as root without a user namespace and
              the zygote drops to the slot's uid before anything else runs ("root-then-drop").
  full        + a seccomp filter and a per-slot cgroup (memory, pids).
Detection probes each layer for real (a bwrap sandbox is started, a cgroup is created) rather
than trusting that a binary exists. Monkeypatching Python builtins is not a layer.

Below `namespaces` a program can read every file the server's user can, reach the network and
leave files for the next run, so the server refuses to start there unless the user opts in
(`--allow-weak-isolation` or QWQRL_ALLOW_WEAK_SANDBOX=1): a weak sandbox is never silent.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from qwqrl.errors import UserError
from qwqrl.sandbox.cgroups import Cgroups, join
from qwqrl.sandbox.seccomp import build_filter

LEVELS = ("rlimits", "uid", "namespaces", "full")
STRONG = "namespaces"  # the weakest level that walls off host files and the network
ALLOW_WEAK_FLAG = "--allow-weak-isolation"
ALLOW_WEAK_ENV = "QWQRL_ALLOW_WEAK_SANDBOX"
INSTALL_BWRAP = "sudo apt-get install -y bubblewrap"
WEAK_EXPOSURE = ("programs run without bubblewrap: they can read every file this user can read, "
                 "reach the network, and leave files the next run sees")
ZYGOTE = Path(__file__).with_name("zygote.py")
SANDBOX_ZYGOTE = "/sandbox/zygote.py"
UID_BASE, UID_BLOCK, UID_BLOCKS = 61000, 64, 64
LOCK_DIR = Path("/run/qwqrl-sandbox")
# What a slot's cgroup admits beyond a run's memory_mb: the warm zygote (~25 MiB), bwrap, page
# cache and small files in /tmp. A run's processes together get the rest.
ZYGOTE_HEADROOM_MB = 128
WORKROOTS = Path("/tmp")
log = logging.getLogger("qwqrl.sandbox")


def level_rank(level: str) -> int:
    if level not in LEVELS:
        raise ValueError(f"isolation level must be one of {', '.join(LEVELS)}, got {level!r}")
    return LEVELS.index(level)


class IsolationTooWeak(UserError):
    """The sandbox would run below the isolation level it must have; the message says why and what to
    do. A UserError, so every `qwqrl` command that starts a sandbox prints it and exits 2."""


def weak_allowed() -> bool:
    """True when the user opted in to weak isolation through the environment."""
    return os.environ.get(ALLOW_WEAK_ENV, "").strip().lower() in ("1", "true", "yes")


def weak_refusal(level: str | None = None) -> str:
    """Why the sandbox refuses to run untrusted code, and the three ways forward."""
    found = f"isolation level {level!r}" if level else "a weak isolation level"
    cause = ("bubblewrap is installed but cannot create a sandbox here (unprivileged user namespaces "
             "refused and the server is not root?)" if shutil.which("bwrap")
             else "bubblewrap (bwrap) is not installed")
    return (f"the code sandbox would run untrusted programs at {found}: {cause}; {WEAK_EXPOSURE}. "
            f"Install it with `{INSTALL_BWRAP}` (or `make install` as root), or accept the risk with "
            f"{ALLOW_WEAK_FLAG} or {ALLOW_WEAK_ENV}=1")


def add_allow_weak_argument(parser: Any) -> None:
    """The opt-in flag, for every command that may start a local sandbox."""
    parser.add_argument(ALLOW_WEAK_FLAG, dest="allow_weak_isolation", action="store_true",
                        help=f"run untrusted code even without bubblewrap ({WEAK_EXPOSURE}); "
                             f"same as {ALLOW_WEAK_ENV}=1")


def allow_weak_from_args(args: Any) -> None:
    """Pass the flag on to every sandbox this process starts (they read the environment)."""
    if getattr(args, "allow_weak_isolation", False):
        os.environ[ALLOW_WEAK_ENV] = "1"


def sandbox_python() -> str:
    """The interpreter programs run under: the system one (readable by any uid) when present."""
    for candidate in ("/usr/bin/python3", sys.executable):
        if os.access(candidate, os.X_OK):
            return os.path.realpath(candidate) if candidate != sys.executable else candidate
    raise RuntimeError("no Python interpreter for the sandbox")


class UidLease:
    """A block of dedicated uids held (by flock) for this server's life, so replicas never share."""

    def __init__(self) -> None:
        LOCK_DIR.mkdir(mode=0o755, exist_ok=True)
        for block in range(UID_BLOCKS):
            fd = os.open(LOCK_DIR / f"uids-{block}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.fd, self.base = fd, UID_BASE + block * UID_BLOCK
            return
        raise RuntimeError("all sandbox uid blocks are taken by other replicas")

    def uid(self, index: int) -> int:
        if index >= UID_BLOCK:
            raise ValueError(f"at most {UID_BLOCK} slots per replica")
        return self.base + index


@dataclass
class Launch:
    """What a slot needs to start its zygote."""

    argv: list[str]
    preexec: Callable[[], None]
    pass_fds: tuple[int, ...]
    cgroup: str | None


@dataclass
class Isolation:
    bwrap: str | None
    uids: UidLease | None
    seccomp: bytes | None
    cgroups: Cgroups | None
    python: str
    bwrap_as_root: bool = False
    slot_memory_mb: int = 4096 + 512
    tmpfs_mb: int = 256
    slot_pids: int = 256
    workroot: Path = field(default_factory=lambda: WORKROOTS / f"qwqrl-sandbox-{os.getpid()}")

    @property
    def level(self) -> str:
        if self.bwrap:
            return "full" if self.seccomp and self.cgroups and self.uids else "namespaces"
        return "uid" if self.uids else "rlimits"

    def report(self) -> dict:
        return {
            "level": self.level,
            "layers": {
                "bubblewrap_namespaces": bool(self.bwrap),
                "bubblewrap_mode": ("root-then-drop" if self.bwrap_as_root else "userns") if self.bwrap else None,
                "dedicated_uid_per_slot": bool(self.uids),
                "seccomp": bool(self.bwrap and self.seccomp),
                "cgroups": bool(self.cgroups),
                "rlimits": True,
            },
            "cgroup_version": self.cgroups.version if self.cgroups else None,
            "cgroup": self.cgroups.describe() if self.cgroups else None,
            "slot_uids": [self.uids.base, self.uids.base + UID_BLOCK - 1] if self.uids else None,
            "python": self.python,
        }

    def launch(self, index: int, probe: bool = False) -> Launch:
        """Command line, privilege drop and cgroup for slot `index`'s zygote (or, with `probe`,
        for the zygote's isolation self-check); call `cleanup(launch)` once it has started."""
        uid = self.uids.uid(index) if self.uids else None
        name = f"slot-{uid if uid is not None else f'{os.getpid()}-{index}'}"
        procs = self.cgroups.create(name, self.slot_memory_mb << 20, self.slot_pids) if self.cgroups else []
        drop_inside = bool(self.bwrap and self.bwrap_as_root and uid is not None)
        preexec = _enter(procs, None if drop_inside else uid)
        script = self._zygote_script()
        mode = "dedicated-uid" if uid is not None else "shared-uid"
        tail = [mode, str(uid) if drop_inside else "-"]
        if probe:
            tail += ["probe", "seccomp" if self.seccomp else "no-seccomp"]
        if not self.bwrap:
            workdir = self.workroot / name
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(mode=0o700)
            if uid is not None:
                os.chown(workdir, uid, uid)
            argv = [self.python, "-I", str(script), str(workdir), *tail]
            return Launch(argv, preexec, (), name if procs else None)
        fds: tuple[int, ...] = ()
        argv = [self.bwrap, *self._bwrap_args(script)]
        if self.seccomp:
            fd = os.memfd_create("seccomp", 0)
            os.write(fd, self.seccomp)
            os.lseek(fd, 0, os.SEEK_SET)
            fds = (fd,)
            argv += ["--seccomp", str(fd)]
        argv += [self.python, "-I", SANDBOX_ZYGOTE, "/tmp", *tail]
        return Launch(argv, preexec, fds, name if procs else None)

    def close(self) -> None:
        """Release the uid block and remove the work directories (no-bwrap levels)."""
        shutil.rmtree(self.workroot, ignore_errors=True)
        if self.uids:
            os.close(self.uids.fd)
            self.uids = None

    def cleanup(self, launch: Launch) -> None:
        for fd in launch.pass_fds:
            os.close(fd)

    def set_run_memory(self, launch: Launch, memory_mb: int) -> None:
        """Cap the slot's cgroup for the next run: its memory_mb plus the zygote's headroom."""
        if launch.cgroup and self.cgroups:
            self.cgroups.set_memory(launch.cgroup, (memory_mb + ZYGOTE_HEADROOM_MB) << 20)

    def remove_cgroup(self, launch: Launch) -> None:
        if launch.cgroup and self.cgroups:
            self.cgroups.remove(launch.cgroup)

    def _zygote_script(self) -> Path:
        """A copy of zygote.py that any slot uid can read (the checkout may sit in a private home)."""
        script = self.workroot / "zygote.py"
        if not script.exists():
            self.workroot.mkdir(parents=True, exist_ok=True)
            self.workroot.chmod(0o711)
            shutil.copyfile(ZYGOTE, script)
            script.chmod(0o644)
        return script

    def _bwrap_args(self, script: Path) -> list[str]:
        if self.bwrap_as_root:  # no user namespace; the zygote needs these caps only to drop to its uid
            args = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                    "--cap-drop", "ALL", *(x for cap in ("CHOWN", "FOWNER", "SETUID", "SETGID")
                                           for x in ("--cap-add", f"CAP_{cap}"))]
        else:
            args = ["--unshare-all", "--unshare-user", "--disable-userns", "--cap-drop", "ALL"]
        args += ["--die-with-parent", "--as-pid-1", "--new-session", "--clearenv", "--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = Path("/") / top
            if path.is_symlink():
                args += ["--symlink", os.readlink(path), str(path)]
            elif path.is_dir():
                args += ["--ro-bind", str(path), str(path)]
        prefix = Path(self.python).resolve().parents[1]
        if not str(prefix).startswith("/usr"):
            args += ["--ro-bind", str(prefix), str(prefix)]
        for etc in ("/etc/ld.so.cache", "/etc/alternatives"):
            if os.path.exists(etc):
                args += ["--ro-bind", etc, etc]
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(self.tmpfs_mb << 20),
                 "--tmpfs", "/tmp", "--ro-bind", str(script), SANDBOX_ZYGOTE, "--remount-ro", "/",
                 "--chdir", "/tmp"]
        return args


def _enter(procs: list[str], uid: int | None) -> Callable[[], None]:
    """A pre-exec hook: join the slot's cgroups, then drop to the slot's uid (no groups)."""
    def preexec() -> None:
        join(procs)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
    return preexec


def detect(use_bwrap: bool = True, use_cgroups: bool = True, use_seccomp: bool = True,
           max_memory_mb: int = 4096, bwrap_as_root: bool = False) -> Isolation:
    """Probe every layer; never raises for a missing layer (the level says what remains).
    A slot's cgroup admits the largest per-run memory limit plus the zygote and the tmpfs."""
    _prune_workroots()
    python = sandbox_python()
    uids = UidLease() if os.geteuid() == 0 else None
    iso = Isolation(bwrap=None, uids=uids, seccomp=build_filter() if use_seccomp else None,
                    cgroups=Cgroups.detect() if use_cgroups else None, python=python)
    iso.slot_memory_mb = max_memory_mb + iso.tmpfs_mb + 256
    iso.bwrap = shutil.which("bwrap") if use_bwrap else None
    if not iso.bwrap:
        return iso
    modes = [True] if bwrap_as_root else [False, True] if uids else [False]
    for seccomp in ([iso.seccomp, None] if iso.seccomp else [None]):
        iso.seccomp = seccomp
        for as_root in modes:
            iso.bwrap_as_root = as_root
            if _probe(iso):
                return iso
            log.warning("bubblewrap probe failed (%s, seccomp %s)",
                        "as root, then drop" if as_root else "user namespace", "on" if seccomp else "off")
    log.warning("bubblewrap is installed but cannot create a sandbox here")
    iso.bwrap, iso.bwrap_as_root = None, False
    return iso


def _prune_workroots() -> None:
    """Remove work directories left by servers that were killed (their PID is gone)."""
    for stale in WORKROOTS.glob("qwqrl-sandbox-*"):
        pid = stale.name.rpartition("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)


def _probe(iso: Isolation) -> bool:
    """Start slot 0's sandbox with the zygote's self-check: PID 1, not root, sockets refused."""
    launch = iso.launch(0, probe=True)
    try:
        done = subprocess.run(launch.argv, preexec_fn=launch.preexec, pass_fds=launch.pass_fds,
                              capture_output=True, timeout=30)
    finally:
        iso.cleanup(launch)
        iso.remove_cgroup(launch)
    if done.returncode:
        log.info("bwrap probe failed: %s", done.stderr.decode(errors="replace").strip()[-500:])
    return done.returncode == 0
