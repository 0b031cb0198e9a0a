"""Run an untrusted command (a student's notebook, its checks) isolated and limited, without Docker.

The grader (:mod:`modlib.companion.course_grading`) runs every submission through :func:`run`.
Isolation comes from `bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``, Debian
package ``bubblewrap``), the sandbox of Flatpak: the command sees a new, empty root file system
in which only what it needs is mounted, read-only (the system's ``/usr``, ``/etc``, the Python
environment, the ``modlib`` package, the model cache) plus one writable working folder; it has
its own process, network (loopback only), IPC and host-name namespaces, and it dies with the
grader. Where the grader runs as root, bwrap sets the namespaces up and the command then drops to
a throw-away unprivileged user id (``setpriv``, no capabilities, ``no_new_privs``), so that file
permissions and the process limit apply to it as well; otherwise bwrap uses an unprivileged user
namespace. What the command cannot see it can neither read nor rewrite: the course's
autograders, the master notebooks, the other submissions and the grades are never mounted.

Limits (:class:`Limits`) are resource limits set on the sandbox before it starts and inherited
by everything in it: ``RLIMIT_DATA`` (memory: heap and anonymous mappings), ``RLIMIT_NPROC``
(processes and threads of the throw-away user), ``RLIMIT_FSIZE`` (size of one written file) and
``RLIMIT_CPU``; the wall-clock limit is the grader's: at the deadline it kills the sandbox,
whose process namespace takes every process of the submission with it.

Where namespaces are not available but the grader is root, ``mechanism="user"`` runs the command
as a throw-away user id (a new one for every run) with the same limits and no capabilities: it
sees the whole file system as any other user does, so the caller hides its files by permissions
(:func:`hidden`), it shares the network, and its processes are killed by user id when the run
ends. ``mechanism="none"`` runs the command unisolated, with the same limits: only for
submissions the teacher trusts, and only when asked for explicitly. :func:`check` says why a
mechanism is not available here (bwrap missing, namespaces refused by the kernel, not root), so
the grader can refuse with the reason. Introduced for ``make grade``; ``docs/course.md`` states
the threat model.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MECHANISMS = ("bwrap", "user", "none")
SANDBOX_UID = 61_000          # throw-away user ids from here (no /etc/passwd entry is needed)
WORK = "/submission"          # where the working folder appears inside the sandbox
GIB = 1024 ** 3


class SandboxError(RuntimeError):
    """Isolation is not available here; the message says why and what to do."""


@dataclass(frozen=True)
class Limits:
    """Per-run limits: ``seconds`` of wall-clock time, ``memory`` in bytes (``RLIMIT_DATA``),
    ``processes`` (``RLIMIT_NPROC``: processes and threads) and ``file_size`` in bytes (largest
    file the run may write)."""

    seconds: float
    memory: int
    processes: int = 256
    file_size: int = 2 * GIB

    def __post_init__(self):
        for name in ("seconds", "memory", "processes", "file_size"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}={getattr(self, name)!r} is not allowed: a limit must "
                                 "be positive")


@dataclass(frozen=True)
class Outcome:
    """How a sandboxed run ended: exit status (negative: killed by that signal), whether the
    wall-clock limit killed it, its duration in seconds and the tails of its output."""

    returncode: int
    timed_out: bool
    seconds: float
    stdout: str
    stderr: str


def _system_mounts() -> list[str]:
    """bwrap arguments for the read-only system: ``/usr``, ``/etc`` and the top-level links or
    folders (``/bin``, ``/lib``, ...) that point into it."""
    args = ["--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def _ancestors(paths: list[Path]) -> list[str]:
    """``--dir`` arguments (mode 0755) for every folder above the mount points, so that the
    unprivileged user can reach them (bwrap would create them readable by root only)."""
    seen, args = set(), []
    for path in paths:
        for parent in reversed(path.parents):
            if str(parent) in ("/", "/usr", "/etc") or parent in seen:
                continue
            seen.add(parent)
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def bwrap_command(argv: list[str], work: Path, read_only: list[Path], env: dict[str, str],
                  writable: bool = True) -> list[str]:
    """The full ``bwrap`` command line that runs ``argv`` in a sandbox (module docstring) with
    ``work`` at ``/submission`` (read-only unless ``writable``), the ``read_only`` paths at their
    own paths, and exactly the environment ``env``."""
    mounts = sorted({Path(os.path.realpath(p)) for p in read_only}
                    | {Path(os.path.abspath(p)) for p in read_only if Path(p).exists()})
    mounts = [p for p in mounts if p.exists() and not any(
        str(p).startswith(prefix) for prefix in ("/usr/", "/etc/"))]
    command = ["bwrap", "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts",
               "--unshare-cgroup-try", "--die-with-parent", "--new-session",
               *_system_mounts(), "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
               *_ancestors(mounts + [Path(WORK)])]
    for path in mounts:
        command += ["--ro-bind", str(path), str(path)]
    command += ["--bind" if writable else "--ro-bind", str(work), WORK, "--chdir", WORK,
                "--clearenv"]
    for name, value in sorted(env.items()):
        command += ["--setenv", name, value]
    if os.geteuid() == 0:   # namespaces set up as root; the command runs as a throw-away user
        command += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--",
                    "setpriv", f"--reuid={sandbox_uid()}", f"--regid={sandbox_uid()}",
                    "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                    "--no-new-privs", "--"]
    else:
        command[1:1] = ["--unshare-user"]
        command += ["--"]
    return command + list(argv)


_CHECKED: dict[str, str | None] = {}


def check(mechanism: str = "bwrap") -> str | None:
    """Why ``mechanism`` cannot isolate a run here (``None`` when it can): bwrap is not
    installed, or a trial sandbox failed (user namespaces disabled, for instance). The answer is
    cached for the process.

    Raises:
        ValueError: unknown ``mechanism``.
    """
    if mechanism not in MECHANISMS:
        raise ValueError(f"isolation={mechanism!r} is not allowed: choose one of {MECHANISMS}")
    if mechanism == "none":
        return None
    if mechanism == "user":
        if os.geteuid() != 0:
            return "running submissions as a throw-away user needs root"
        if not shutil.which("setpriv"):
            return "setpriv (util-linux) is missing"
        for path in python_environment():
            if not _reachable_by_others(path):
                return (f"{path} (the Python environment) is not readable by other users, so "
                        "a throw-away user could not run it")
        return None
    if mechanism not in _CHECKED:
        _CHECKED[mechanism] = _trial()
    return _CHECKED[mechanism]


def _trial() -> str | None:
    if shutil.which("bwrap") is None:
        return ("bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; make "
                "grade installs it when run as root)")
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        return "setpriv (util-linux) is missing, so the sandbox cannot drop root"
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o777)
        outcome = run(["/bin/sh", "-c", "touch x && id -u"], Path(tmp), [], {},
                      Limits(seconds=30, memory=GIB), mechanism="bwrap", checked=True)
    if outcome.returncode != 0 or outcome.timed_out:
        return (f"a trial bwrap sandbox failed (exit status {outcome.returncode}: "
                f"{outcome.stderr.strip()[-300:]}); unprivileged user namespaces may be disabled "
                "(sysctl kernel.unprivileged_userns_clone=1, or run the grader as root)")
    return None


def sandbox_uid() -> int:
    """The throw-away user id of this grader process (one per process, so that two graders
    running at once do not share a process limit)."""
    return SANDBOX_UID + os.getpid() % 4000


def _tasks_of(uid: int) -> int:
    """How many processes and threads ``uid`` runs now (``RLIMIT_NPROC`` counts them all)."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                pass
    return count


def _limit(limits: Limits):
    """The ``preexec_fn`` that sets ``limits`` in the child before bwrap starts. The process
    limit counts every task of the user: as root it applies to the throw-away user alone; as an
    unprivileged grader it comes on top of what the grader's user already runs."""
    processes = limits.processes + (0 if os.geteuid() == 0 else _tasks_of(os.geteuid()))

    def apply():
        resource.setrlimit(resource.RLIMIT_DATA, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        cpu = int(limits.seconds) + 10
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _tail(path: Path, size: int = 4000) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - size))
        return handle.read().decode("utf-8", "replace")


def run(argv: list[str], work: Path, read_only: list[Path], env: dict[str, str], limits: Limits,
        mechanism: str = "bwrap", writable: bool = True, checked: bool = False) -> Outcome:
    """Run ``argv`` isolated by ``mechanism`` (``bwrap``, or ``none``: not isolated) with
    ``limits``, in ``work`` (``/submission`` inside the sandbox; the throw-away user owns it when
    ``writable``), seeing only ``read_only`` besides the system, with environment ``env``
    (``{WORK}`` in a value stands for the working folder's path as the command sees it).

    Returns:
        The :class:`Outcome`; a run killed at the wall-clock limit has ``timed_out`` set.

    Raises:
        SandboxError: ``mechanism`` cannot isolate here (:func:`check` says why).
    """
    if not checked:
        reason = check(mechanism)
        if reason:
            raise SandboxError(reason)
    inside = WORK if mechanism == "bwrap" else str(work)
    env = {name: value.replace("{WORK}", inside) for name, value in env.items()}
    uid = sandbox_uid()
    if mechanism == "bwrap":
        if writable and os.geteuid() == 0:
            _give(work, uid)
        command = bwrap_command(argv, work, read_only, env, writable)
        options = {"env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}}
    elif mechanism == "user":
        global _RUNS
        _RUNS += 1
        uid = sandbox_uid() + 4000 * _RUNS     # a new user for every run: nothing is shared
        _give(work, uid)
        command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", *argv]
        options = {"env": env, "cwd": str(work)}
    else:
        command, options = list(argv), {"env": env, "cwd": str(work)}
    with tempfile.TemporaryDirectory() as logs:
        out, err = Path(logs) / "out", Path(logs) / "err"
        start = time.monotonic()
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=stdout,
                                       stderr=stderr, preexec_fn=_limit(limits),
                                       start_new_session=True, **options)
            try:
                returncode, timed_out = process.wait(timeout=limits.seconds), False
            except subprocess.TimeoutExpired:
                _kill(process)
                returncode, timed_out = process.wait(), True
            finally:
                if mechanism == "user":
                    kill_user(uid)
        seconds = time.monotonic() - start
        return Outcome(returncode, timed_out, seconds, _tail(out), _tail(err))


def _kill(process: subprocess.Popen) -> None:
    """Kill the sandbox's process group; with bwrap, its process namespace dies with it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_RUNS = 0


def kill_user(uid: int) -> None:
    """Kill every process of ``uid`` (the throw-away user of a run without a process
    namespace), until none is left."""
    for _ in range(100):
        pids = [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()
                and _uid_of(e.path) == uid]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


def _uid_of(path: str) -> int | None:
    try:
        return os.stat(path).st_uid
    except OSError:
        return None


@contextlib.contextmanager
def hidden(folders: list[Path]):
    """Take every permission of "others" off ``folders`` for the ``with`` block (restored
    afterwards): what a throw-away user must not read (``mechanism="user"``)."""
    saved = []
    try:
        for folder in folders:
            if folder.is_dir():
                mode = stat.S_IMODE(folder.stat().st_mode)
                saved.append((folder, mode))
                folder.chmod(mode & ~0o007)
        yield
    finally:
        for folder, mode in saved:
            folder.chmod(mode)


def _give(folder: Path, uid: int) -> None:
    """Make the throw-away user own ``folder`` and everything in it (the grader is root)."""
    for root, dirs, files in os.walk(folder):
        os.chown(root, uid, uid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def _reachable_by_others(path: Path) -> bool:
    """Whether a user without any group of ours can reach ``path`` (execute permission on
    every folder above it, read permission on it)."""
    path = Path(os.path.realpath(path))
    for folder in [*reversed(path.parents)]:
        if not folder.stat().st_mode & stat.S_IXOTH:
            return False
    return bool(path.stat().st_mode & stat.S_IROTH)


def python_environment() -> list[Path]:
    """What a sandboxed Python needs to see, read-only: this environment (``sys.prefix``), the
    interpreter's installation (``sys.base_prefix``, resolved) and the folder that holds the
    ``modlib`` package (only ``modlib/`` itself, never the rest of the repository)."""
    import modlib

    package = Path(modlib.__file__).resolve().parent
    interpreter = Path(os.path.realpath(sys.executable)).parent.parent
    return [Path(sys.prefix), Path(os.path.realpath(sys.base_prefix)), interpreter, package]
