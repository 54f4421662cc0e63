"""The pre-forked worker that lives inside each slot (stdlib only; runs under the sandbox's Python).

Why: starting a sandbox and an interpreter per test costs tens of milliseconds; forking a warm
interpreter costs about one. The zygote reads jobs from the host over its stdin/stdout pipes
(frames: 8-byte header with two lengths, a JSON header, a raw blob), forks one child per job,
applies rlimits in the child, and runs either Python source in-process (the runtime is already
warm) or an executable (compiled C++, the compiler itself) via execve.

Inside bubblewrap the zygote is PID 1 of the slot's PID namespace, so the program it runs can
neither signal it (kill(1), kill(-1), killing its parent) nor escape the sweep: after every job
it kills every other process in the namespace and wipes the slot's tmpfs. Outside bubblewrap the
sweep falls back to the processes of the slot's dedicated uid, or to the job's process group.
The harness for `call` and `assert` tests writes its verdict line with a per-run nonce that the
host checks; values are compared on the host, never with the program's own `__eq__`.
"""
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import time
import traceback

# Warm the modules competitive-programming code imports, so children share them copy-on-write.
import bisect, collections, copy, decimal, fractions, functools, heapq, io, itertools, math  # noqa: E401,F401
import operator, random, re, statistics, string, typing  # noqa: E401,F401

FRAME = struct.Struct("!II")
ENV = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8"}
STDERR_KEEP = 16384
COMPILE_FAILED, COMPILED = b"C", b"R"
PR_SET_DUMPABLE = 4
LIBC = None  # the C library (ctypes), loaded once by main()


def read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd):
    hlen, blen = FRAME.unpack(read_exact(fd, FRAME.size))
    return json.loads(read_exact(fd, hlen)), read_exact(fd, blen)


def write_frame(fd, header, blob=b""):
    head = json.dumps(header).encode()
    data = memoryview(FRAME.pack(len(head), len(blob)) + head + blob)
    while data:
        data = data[os.write(fd, data):]


def memfd(name, data=b""):
    fd = os.memfd_create(name, 0)
    if data:
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    return fd


def set_limits(job):
    mem = int(job["memory_mb"]) << 20
    cpu = max(1, int(-(-float(job["time_s"]) // 1)))
    limits = {
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_FSIZE: (int(job["output_bytes"]),) * 2,
        resource.RLIMIT_NOFILE: (int(job["nofile"]),) * 2,
        resource.RLIMIT_NPROC: (int(job["nproc"]),) * 2,
        resource.RLIMIT_CORE: (0, 0),
    }
    _, stack_hard = resource.getrlimit(resource.RLIMIT_STACK)  # deep recursion, as judges allow
    stack = mem if stack_hard == resource.RLIM_INFINITY else min(mem, stack_hard)
    limits[resource.RLIMIT_STACK] = (stack, stack_hard)
    if job.get("address_space", True):
        limits[resource.RLIMIT_AS] = (mem + int(job.get("as_base", 0)),) * 2
    for which, value in limits.items():
        resource.setrlimit(which, value)


def run_python(job, status_fd):
    """Child side of a Python job: compile (CE is reported before any user code runs), then run."""
    try:
        code = compile(job["code"], "solution.py", "exec")
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError):
        traceback.print_exc(limit=0)
        os.write(status_fd, COMPILE_FAILED)
        os._exit(1)
    extra = compile(job["assert_src"], "<test>", "exec") if job.get("mode") == "assert" else None
    os.write(status_fd, COMPILED)
    os.close(status_fd)
    nonce, mode, dumps, write, stdout_fileno = job["nonce"], job.get("mode"), json.dumps, os.write, 1
    sys.stdin = sys.__stdin__ = open(0, "r", encoding="utf-8", errors="replace", closefd=False)
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)
    sys.argv = ["solution.py"]
    random.seed()  # a fresh interpreter would seed from the OS; forked ones share the zygote's state
    main = type(sys)("__main__")
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    status = 0
    try:
        exec(code, main.__dict__)
        if mode == "call":
            result = call_entry(main.__dict__, job["fn_name"], job["args"])
            try:
                line = dumps(result)
            except (TypeError, ValueError) as e:
                line = dumps({"__unserializable__": f"{type(result).__name__}: {e}"})
        elif mode == "assert":
            exec(extra, main.__dict__)
            line = "PASS"
        if mode in ("call", "assert"):
            sys.stdout.flush()
            write(stdout_fileno, f"\n{nonce}{line}\n".encode())
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, (int, type(None))):
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            status = status or 1
    os._exit(status)


def call_entry(namespace, fn_name, args):
    """The function named `fn_name`, or a method of LeetCode's `Solution` class."""
    if callable(namespace.get(fn_name)):
        return namespace[fn_name](*args)
    cls = namespace.get("Solution")
    if isinstance(cls, type) and hasattr(cls, fn_name):
        return getattr(cls(), fn_name)(*args)
    raise NameError(f"no function named {fn_name!r}")


def child(job, fds):
    """In the forked child: detach, reset signals, limits, wire stdio, then run or execve."""
    os.setsid()
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    prefer_for_oom_kill()
    os.chdir(job["cwd"])
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    extra = fds[3]
    os.dup2(extra, 3)
    os.closerange(4, 1 << 16)
    set_limits(job)
    if job["kind"] == "python":
        run_python(job, 3)
    os.set_inheritable(3, False)
    if job["kind"] == "exec":
        os.execve(3, job["argv"], ENV)
    os.execvpe(job["argv"][0], job["argv"], ENV)


def prefer_for_oom_kill():
    """When the slot's cgroup runs out, the OOM killer takes the program, not the zygote. The
    child inherits the zygote's non-dumpability, which makes its /proc files root's; it has
    nothing to hide from its own program, so it becomes dumpable to write its score."""
    try:
        if LIBC is not None:
            LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass


def wait_child(pid, wall_s):
    """Wait with a wall-clock backstop; returns (wait status, rusage, wall seconds, killed)."""
    start = time.monotonic()
    pidfd = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], wall_s)
    finally:
        os.close(pidfd)
    killed = not ready
    if killed:
        os.kill(pid, signal.SIGKILL)
    _, status, usage = os.wait4(pid, 0)
    return status, usage, time.monotonic() - start, killed


class Zygote:
    def __init__(self, pid1, dedicated_uid, workdir):
        self.pid1, self.dedicated_uid, self.workdir = pid1, dedicated_uid, workdir
        self.as_base = vm_size()

    def run(self, job, blob):
        job = dict(job, cwd=self.workdir, as_base=self.as_base)
        for name, text in job.get("files", {}).items():
            with open(os.path.join(self.workdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        fds = [memfd("stdin", job.get("stdin", "").encode()), memfd("stdout"), memfd("stderr")]
        status_r = None
        if job["kind"] == "python":
            status_r, extra = os.pipe()
        elif job["kind"] == "exec":
            extra = memfd("program", blob)
        else:
            extra = os.open("/dev/null", os.O_RDONLY)
        fds.append(extra)
        pid = os.fork()
        if pid == 0:
            try:
                child(job, fds)
            except BaseException:
                traceback.print_exc()
            os._exit(127)
        os.close(extra)
        status, usage, wall, killed = wait_child(pid, float(job["wall_s"]))
        compiled = None
        if status_r is not None:
            compiled = {COMPILED: True, COMPILE_FAILED: False}.get(os.read(status_r, 1))
            os.close(status_r)
        self.sweep(pid)
        cap = int(job["output_bytes"])
        stdout = os.pread(fds[1], cap + 1, 0)
        out_size, err_size = os.fstat(fds[1]).st_size, os.fstat(fds[2]).st_size
        stderr = os.pread(fds[2], STDERR_KEEP, max(0, err_size - STDERR_KEEP))
        for fd in fds[:3]:
            os.close(fd)
        out_blob = stdout
        if job["kind"] == "compile" and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            with open(os.path.join(self.workdir, job["artifact"]), "rb") as f:
                out_blob = f.read()
        wiped = self.wipe()
        header = {
            "recycle": not wiped,
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000, 1),
            "wall_ms": round(wall * 1000, 1),
            "max_rss_kb": usage.ru_maxrss,
            "wall_killed": killed,
            "compiled": compiled,
            "stdout_size": out_size,
            "stderr_size": err_size,
            "stderr": stderr.decode("utf-8", "replace"),
        }
        return header, out_blob

    def sweep(self, pid):
        """Kill every process the job left behind and reap them."""
        if self.pid1:
            while True:
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
                reap_all(block=True)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.dedicated_uid:
                for other in same_uid_pids():
                    try:
                        os.kill(other, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
            reap_all(block=False)

    def wipe(self):
        """Empty the work directory; False if something resisted (the host then recycles the slot)."""
        try:
            with os.scandir(self.workdir) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        shutil.rmtree(entry.path, onerror=_chmod_retry)
                    else:
                        os.unlink(entry.path)
        except OSError:
            return False
        return True


def _chmod_retry(func, path, _exc):
    os.chmod(os.path.dirname(path), 0o700)
    if os.path.isdir(path) and not os.path.islink(path):
        os.chmod(path, 0o700)
        shutil.rmtree(path)
    else:
        func(path)


def reap_all(block):
    while True:
        try:
            pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def same_uid_pids():
    uid, me = os.getuid(), os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != me:
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    yield int(name)
            except OSError:
                pass


def vm_size():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def drop_privileges(uid, workdir):
    """Started as root (bubblewrap without user namespaces): hand the work directory to the
    slot's uid and become it for good (setresuid from root to another uid clears every cap)."""
    os.chown(workdir, uid, uid)
    os.chmod(workdir, 0o700)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def self_check(dedicated_uid, expect_seccomp):
    """Exit status for the isolation probe: PID 1, not root, inet sockets refused (if expected)."""
    import socket
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        blocked = False
    except PermissionError:
        blocked = True
    ok = os.getpid() == 1 and (os.getuid() != 0 or not dedicated_uid) and (blocked or not expect_seccomp)
    return 0 if ok else 1


def main():
    """argv: WORKDIR (dedicated-uid|shared-uid) (DROP_TO_UID|-) [probe [seccomp]]"""
    workdir, uid_mode, drop_to = sys.argv[1:4]
    if drop_to != "-":
        drop_privileges(int(drop_to), workdir)
    if sys.argv[4:5] == ["probe"]:
        sys.exit(self_check(uid_mode == "dedicated-uid", sys.argv[5:6] == ["seccomp"]))
    pid1 = os.getpid() == 1
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    global LIBC
    try:  # a non-dumpable zygote cannot be read or written through /proc/1/mem by its children
        import ctypes
        LIBC = ctypes.CDLL(None, use_errno=True)
        LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        LIBC = None
    zygote = Zygote(pid1, dedicated_uid=uid_mode == "dedicated-uid", workdir=workdir)
    inp, out = os.dup(0), os.dup(1)
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    write_frame(out, {"ready": True, "pid1": pid1, "python": sys.version.split()[0]})
    while True:
        try:
            job, blob = read_frame(inp)
        except EOFError:
            return
        try:
            write_frame(out, *zygote.run(job, blob))
        except Exception:
            write_frame(out, {"fault": traceback.format_exc(limit=3)})
            return


if __name__ == "__main__":
    main()
