"""``python -m leadsync …`` for the tests, at a fraction of the CPU: a drop-in for ``subprocess.run``.

Each CLI call in the tests is still its own process, running the real entry point from its first line:
its own pid, environment, working directory, stdout and stderr, exit code (``-N`` when a signal ends
it), threads and signal handlers. What it skips is the interpreter start and the imports, about 1.5 s
of CPU of the 1.6 s a short command costs, and the suite makes hundreds of calls. A zygote process
(one per test process, started at its first call) imports leadsync once and forks each call from
that state, as Python's own ``forkserver`` does. The zygote is single-threaded when it forks.

Only ``[sys.executable, "-m", MODULE, ...]`` of a module in ``MODULES`` goes this way; any other
command, and every command where ``LEADSYNC_TEST_FORK_CLI=0``, runs through ``subprocess.run``. A test
that needs the installed ``leadsync`` script or a fresh interpreter (packaging, signals to a live
process) uses ``subprocess`` itself.

Differences from a fresh interpreter, none of which leadsync depends on: the string hash seed is the
zygote's, and modules are imported before the call's environment is set (no module of leadsync's
reads the environment at import, and rich's consoles, which do, see ``READ_AT_IMPORT``; ``random``
is reseeded after fork by Python, numpy's here). ``LEADSYNC_TEST_FORK_CLI=0`` turns it off.
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# Modules a call may run; the zygote imports what they import before it forks (a module run as
# ``__main__`` is not imported itself: runpy warns of a module run twice).
MODULES = ("leadsync", "leadsync.sync.cli", "tests.integration.pipeline.fastcli")
# Commands import most of what they use when they run: the zygote imports every module of leadsync's.
PRELOADED = (
    "leadsync.config",
    "leadsync.connectors",
    "leadsync.scoring",
    "leadsync.sync",
    "leadsync.sandbox",
)
# and what they import only when a command needs it: Alembic when a new store is made, the driver
THIRD_PARTY = ("alembic.command", "alembic.config", "alembic.script", "psycopg")
SKIPPED = ("__main__", "migrations")  # a run-as-main module; Alembic's scripts (its env.py runs on import)
# rich's consoles (made when leadsync.sync.cli is imported) fix their size and colours from these if
# set then; unset in the zygote, each call's own environment decides. The zygote gets os.environ
# without them, not the C-level environment (a library may have set COLUMNS and LINES there).
READ_AT_IMPORT = (
    "COLUMNS",
    "LINES",
    "FORCE_COLOR",
    "NO_COLOR",
    "TTY_COMPATIBLE",
    "TTY_INTERACTIVE",
)
_ENABLED = os.environ.get("LEADSYNC_TEST_FORK_CLI", "1") != "0"

_lock = threading.Lock()
_zygote: _Zygote | None = None


def run(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    capture_output: bool = False,
    text: bool = False,
    check: bool = False,
    **others: Any,
) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` with the same meaning; a preloaded ``-m`` module is forked from the zygote."""
    args = [str(arg) for arg in args]
    if not (_forkable(args) and capture_output and not others):
        return subprocess.run(
            args,
            cwd=cwd,
            env=env,
            timeout=timeout,
            capture_output=capture_output,
            text=text,
            check=check,
            **others,
        )
    done = _get_zygote().run(
        args, cwd=str(cwd or os.getcwd()), env=dict(os.environ if env is None else env), timeout=timeout
    )
    if text:
        done.stdout = _text(done.stdout)
        done.stderr = _text(done.stderr)
    if check:
        done.check_returncode()
    return done


def popen(
    args: Sequence[str],
    *,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    stdout: Any = None,
    stderr: Any = None,
    text: bool = False,
    **others: Any,
) -> Any:
    """``subprocess.Popen`` with the same meaning (a ``Popen`` here for a preloaded ``-m`` module)."""
    args = [str(arg) for arg in args]
    if not _forkable(args) or others:
        return subprocess.Popen(args, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=text, **others)
    return Popen(args, cwd=cwd, env=env, stdout=stdout, stderr=stderr, text=text)


class Popen:
    """The part of ``subprocess.Popen`` the tests use, for a call forked from the zygote: ``pid`` is
    the call's own, so signals reach it as they would a spawned process."""

    def __init__(
        self,
        args: list[str],
        *,
        cwd: str | Path | None,
        env: Mapping[str, str] | None,
        stdout: Any,
        stderr: Any,
        text: bool,
    ) -> None:
        self.args = args
        self.stdin = None
        ours: list[int] = []  # this process's copies of the call's ends, closed once it has them

        def target(spec: Any, inherited: int) -> tuple[int, Any]:
            if spec == subprocess.PIPE:
                read, write = os.pipe()
                ours.append(write)
                return write, open(read, "r" if text else "rb")  # noqa: SIM115 - the caller's to close
            if spec == subprocess.DEVNULL:
                ours.append(os.open(os.devnull, os.O_WRONLY))
                return ours[-1], None
            if spec is None:
                return inherited, None
            return (spec if isinstance(spec, int) else spec.fileno()), None

        out, self.stdout = target(stdout, 1)
        err, self.stderr = (out, None) if stderr == subprocess.STDOUT else target(stderr, 2)
        try:
            self._call = _get_zygote().start(
                args,
                cwd=str(cwd or os.getcwd()),
                env=dict(os.environ if env is None else env),
                fds=(out, err),
            )
        finally:
            for fd in ours:
                os.close(fd)
        self.pid = self._call.pid
        self._readers: dict[str, Any] = {}

    @property
    def returncode(self) -> int | None:
        return self._call.returncode

    def poll(self) -> int | None:
        try:
            return self._call.wait(0)
        except TimeoutError:
            return None

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self._call.wait(timeout)
        except TimeoutError:
            raise subprocess.TimeoutExpired(self.args, timeout or 0) from None

    def send_signal(self, signal: int) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, signal)
            except ProcessLookupError:
                pass

    def terminate(self) -> None:
        self.send_signal(15)

    def kill(self) -> None:
        self.send_signal(9)

    def communicate(self, input: Any = None, timeout: float | None = None) -> tuple[Any, Any]:  # noqa: A002
        """Read both pipes to their end and wait, as ``subprocess.Popen.communicate``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for name in ("stdout", "stderr"):
            stream = getattr(self, name)
            if stream is not None and name not in self._readers:
                box: dict[str, Any] = {}
                reader = threading.Thread(target=lambda s=stream, b=box: b.update(data=s.read()), daemon=True)
                reader.start()
                self._readers[name] = (reader, box)
        for reader, _ in self._readers.values():
            reader.join(None if deadline is None else max(deadline - time.monotonic(), 0))
            if reader.is_alive():
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
        self.wait(None if deadline is None else max(deadline - time.monotonic(), 0))
        found = {name: box.get("data") for name, (_, box) in self._readers.items()}
        return found.get("stdout"), found.get("stderr")

    def __enter__(self) -> Popen:
        return self

    def __exit__(self, *_: object) -> None:
        for stream in (self.stdout, self.stderr):
            if stream is not None:
                stream.close()
        self.wait()


def _forkable(args: list[str]) -> bool:
    return (
        _ENABLED and len(args) >= 3 and args[0] == sys.executable and args[1] == "-m" and args[2] in MODULES
    )


def _text(raw: bytes) -> str:
    # what subprocess's text mode gives: the locale's encoding, universal newlines
    import locale

    return raw.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def _get_zygote() -> _Zygote:
    global _zygote
    with _lock:
        if _zygote is None or not _zygote.alive():
            _zygote = _Zygote()
            atexit.register(_zygote.stop)
        return _zygote


class _Zygote:
    """The client side: starts the zygote and asks it for one forked call per connection."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="leadsync-zygote-"))
        self.path = str(self.folder / "socket")
        self.log = open(self.folder / "zygote.log", "wb")  # noqa: SIM115 - kept open for the process
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.forkcli", self.path],
            cwd=ROOT,
            env={name: value for name, value in os.environ.items() if name not in READ_AT_IMPORT},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.log,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if line.strip() != b"ready":
            raise RuntimeError(f"the CLI zygote did not start: {(self.folder / 'zygote.log').read_text()}")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()

    def start(self, args: list[str], *, cwd: str, env: dict[str, str], fds: Sequence[int]) -> _Call:
        """Fork ``args`` with ``fds`` as its stdout and stderr."""
        request = json.dumps({"module": args[2], "argv": args[3:], "cwd": cwd, "env": env}).encode() + b"\n"
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            connection.connect(self.path)
            socket.send_fds(connection, [request], list(fds))
            call = _Call(connection)
        except BaseException:
            connection.close()
            raise
        return call

    def run(
        self, args: list[str], *, cwd: str, env: dict[str, str], timeout: float | None
    ) -> subprocess.CompletedProcess[bytes]:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            call = self.start(args, cwd=cwd, env=env, fds=(out.fileno(), err.fileno()))
            try:
                returncode = call.wait(timeout)
            except TimeoutError:
                call.kill()
                call.wait(None)
                out.seek(0)
                err.seek(0)
                raise subprocess.TimeoutExpired(args, timeout or 0, out.read(), err.read()) from None
            finally:
                call.close()
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(args, returncode, out.read(), err.read())


class _Call:
    """One forked call, seen from the test process: its pid, then its exit status when it ends."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.lines = _Lines(connection)
        self.pid: int = self.lines.next(None)["pid"]
        self.returncode: int | None = None

    def wait(self, timeout: float | None) -> int:
        """The exit code (``-N``: ended by signal N); TimeoutError if it runs past ``timeout``."""
        if self.returncode is None:
            self.returncode = self.lines.next(timeout)["returncode"]
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        self.connection.close()


class _Lines:
    """JSON lines from the zygote, each read with its own timeout."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.buffer = b""

    def next(self, timeout: float | None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            self.connection.settimeout(None if deadline is None else max(deadline - time.monotonic(), 0.001))
            chunk = self.connection.recv(65536)
            if not chunk:
                raise RuntimeError("the CLI zygote closed the call's connection (see its log)")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)


# --- the zygote ----------------------------------------------------------------------------------


def _serve(path: str) -> tuple[dict[str, Any], list[int]] | None:
    """Preload, then fork each call; returns in a forked call (its request and streams), and None
    in the zygote once the test process is gone."""
    import gc
    import importlib
    import pkgutil
    import selectors

    for name in PRELOADED:
        package = importlib.import_module(name)
        for found in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not any(part in SKIPPED for part in found.name.split(".")):
                importlib.import_module(found.name)
    for name in THIRD_PARTY:
        try:
            importlib.import_module(name)
        except ImportError:  # an optional extra not installed: the call imports what it finds
            pass
    # What is loaded stays out of the collector's walks: a forked call then copies only the pages it
    # writes, not the whole heap at its first collection.
    gc.freeze()
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        while os.getppid() == parent:  # the test process is gone: so is the zygote
            if selector.select(timeout=1.0):
                connection, _ = listener.accept()
                call = _fork_call(listener, connection)
                if call is not None:
                    return call
            _reap()
    return None


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _fork_call(listener: socket.socket, connection: socket.socket) -> tuple[dict[str, Any], list[int]] | None:
    """Fork a waiter, which forks the call, reports its pid and then its exit status. Returns None in
    the zygote; in the call, its request and streams."""
    if os.fork():
        connection.close()
        return None
    try:
        raw, fds, _, _ = socket.recv_fds(connection, 1 << 20, 2)
        while not raw.endswith(b"\n"):
            raw += connection.recv(1 << 20)
        call = os.fork()
        if call == 0:
            listener.close()
            connection.close()
            return json.loads(raw), fds
        for fd in fds:
            os.close(fd)
        connection.sendall(json.dumps({"pid": call}).encode() + b"\n")
        _, status = os.waitpid(call, 0)
        connection.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
    except BaseException:  # noqa: BLE001 - the waiter says what went wrong in the zygote's log
        import traceback

        traceback.print_exc()
    os._exit(0)


def _run_call(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked call: its streams, directory and environment, then the module as ``python -m``.
    Its end is the interpreter's own: exit code, traceback, threads joined, atexit, objects finalised
    (a SQLite connection closed at exit checkpoints its WAL, which a test of a damaged store sees)."""
    import runpy

    out, err = fds
    os.dup2(out, 1)
    os.dup2(err, 2)
    os.close(out)
    os.close(err)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    sys.argv = ["-m", *request["argv"]]
    runpy.run_module(request["module"], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    forked = _serve(sys.argv[1])
    if forked is not None:
        _run_call(*forked)
