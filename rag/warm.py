"""The warm process behind `rag ask`: the index and models stay loaded between commands.

Loading the embedders and the generator takes seconds; answering a question, well under one. So
`rag ask` hands its question to a background process that has them loaded, and starts one when
there is none: the first command pays for the loading, the next ones answer at once. The process
serves one settings key (index folder, models, generator, code version: `key()`), reloads the
index when it is rebuilt, and exits after `Settings.warm_idle` seconds without a question. It
prints nothing of its own: the command shows exactly what it would have shown answering in its
own process (the same lines, streamed draft and warnings), and answers in its own process when
the warm one cannot be had (`RAG_WARM=0`, `--no-warm`, a process that failed to start).

Protocol: a Unix socket in a folder only its user may enter (0700, checked), one JSON request
line per connection, then JSON event lines: {"token"}, {"warning"}, and one {"lines"}, {"json"}
or {"error", "exit_code"}."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.errors import RagError
from rag.settings import Settings

PROTOCOL = 1
PER_REQUEST = ("k", "retrieval", "use_llm", "answer_mode", "temperature")  # `rag ask` flags a warm process takes per question
NOT_KEYED = PER_REQUEST + ("warm", "warm_idle")
MAX_REQUEST = 64 * 1024  # bytes of one request line (a question is at most a few thousand characters)
MAX_EVENT = 16 * 1024 * 1024  # bytes of one event line from the warm process
START_TIMEOUT = 300.0  # seconds a new warm process may take to load (a first load probes llama.cpp in a child)
ANSWER_TIMEOUT = 900.0  # seconds without a word from the warm process before the command gives up
log = logging.getLogger("rag")


class WarmError(RagError):
    """A failure the warm process reported for a question: shown as it would have been in process."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# ---------------------------------------------------------------- where, and for which settings

def warm_dir() -> Path:
    """The folder of the warm processes' sockets: RAG_WARM_DIR, else $XDG_RUNTIME_DIR/rag, else
    ~/.cache/rag/warm."""
    if os.environ.get("RAG_WARM_DIR"):
        return Path(os.environ["RAG_WARM_DIR"])
    if os.environ.get("XDG_RUNTIME_DIR"):
        return Path(os.environ["XDG_RUNTIME_DIR"]) / "rag"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag" / "warm"


def private_dir(folder: Path) -> Path | None:
    """`folder`, created if needed, when only this user may enter it; None otherwise (another
    user could then connect to a socket there, or plant one)."""
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        info = folder.stat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return folder


def settings_dict(settings: Settings) -> dict:
    """The settings as JSON values, folders made absolute (the warm process runs elsewhere)."""
    out = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        out[f.name] = str(value.resolve()) if isinstance(value, Path) else value
    return out


def settings_from(values: dict) -> Settings:
    """The inverse of `settings_dict`."""
    kinds = {f.name: f.type for f in dataclasses.fields(Settings)}
    return Settings(**{name: Path(v) if "Path" in str(kinds[name]) else v
                       for name, v in values.items() if name in kinds}).validated()


def code_stamp() -> str:
    """Changes when the installed code does: a warm process never answers with old code."""
    root = Path(__file__).parent
    newest = max((p.stat().st_mtime_ns for p in root.rglob("*.py")), default=0)
    return f"{newest}"


def key(settings: Settings) -> str:
    """What a warm process is for: every setting but those taken per question, the manifest's
    version and the code's.

    >>> key(Settings(k=3)) == key(Settings(k=8)), key(Settings(generator="a")) == key(Settings(generator="b"))
    (True, False)
    """
    values = {k: v for k, v in settings_dict(settings).items() if k not in NOT_KEYED}
    try:
        values["manifest_version"] = settings.manifest_path.stat().st_mtime_ns
    except OSError:
        values["manifest_version"] = None
    values["code"], values["protocol"] = code_stamp(), PROTOCOL
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- the command's side

def ask(settings: Settings, question: str, as_json: bool, on_token: Callable[[str], None]) -> dict | None:
    """The warm process's reply ({"lines": [...]} or {"json": "..."}), its draft passed to
    `on_token` as it comes and its warnings logged; None when no warm process can answer (the
    command then answers in its own process). Raises WarmError for what the answer raised there."""
    folder = private_dir(warm_dir())
    if folder is None or not (settings.index_dir / "CURRENT").is_file():
        return None  # (no index: answering in process says so, in the one place that does)
    path = folder / f"{key(settings)}.sock"
    connection = _connect(path) or _start(settings, folder, path)
    if connection is None:
        return None
    request = {"protocol": PROTOCOL, "question": question, "json": as_json,
               "overrides": {name: getattr(settings, name) for name in PER_REQUEST}}
    said_anything = False
    with connection:
        try:
            connection.sendall(json.dumps(request).encode() + b"\n")
            for event in _events(connection):
                if "token" in event:
                    said_anything = True
                    on_token(str(event["token"]))
                elif "warning" in event:
                    log.warning("%s", event["warning"])
                elif "error" in event:
                    raise WarmError(str(event["error"]), int(event.get("exit_code", 1)))
                elif "lines" in event or "json" in event:
                    return event
        except OSError:
            pass
    if said_anything:  # a draft is on the screen: answering again would repeat it
        raise WarmError("the warm process stopped while answering; ask again (or use --no-warm)")
    return None


def _connect(path: Path, timeout: float = ANSWER_TIMEOUT) -> socket.socket | None:
    if not path.exists():
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(timeout)
    try:
        connection.connect(str(path))
        return connection
    except OSError:
        connection.close()
        return None


def _events(connection: socket.socket) -> Iterator[dict]:
    buffer = b""
    while True:
        data = connection.recv(65536)
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            event = json.loads(line)
            if isinstance(event, dict):
                yield event
        if len(buffer) > MAX_EVENT:
            return


def _start(settings: Settings, folder: Path, path: Path) -> socket.socket | None:
    """Start the warm process for these settings (one at a time: a lock) and connect once it has
    loaded; None if it does not come up."""
    from filelock import FileLock, Timeout

    try:
        with FileLock(str(path.with_suffix(".lock")), timeout=START_TIMEOUT):
            connection = _connect(path)
            if connection is not None:  # another command started it meanwhile
                return connection
            _stop_others_for(settings, folder, path)
            logfile = path.with_suffix(".log")
            with open(logfile, "wb") as out:
                child = subprocess.Popen(
                    [sys.executable, "-m", "rag.warm", str(path), json.dumps(settings_dict(settings))],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, close_fds=True)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                connection = _connect(path)
                if connection is not None:
                    return connection
                if child.poll() is not None:
                    return None  # it failed to load: answering in process shows why
                time.sleep(0.05)
            child.kill()
            return None
    except (Timeout, OSError):
        return None


def _stop_others_for(settings: Settings, folder: Path, path: Path) -> None:
    """Stop warm processes that serve the same index with other settings or older code: the one
    about to start replaces them (each holds the models in memory)."""
    index = str(settings.index_dir.resolve())
    for info in running(folder):
        if info.get("index_dir") == index and info["socket"] != str(path):
            stop(Path(info["socket"]))


def running(folder: Path | None = None) -> list[dict]:
    """What each live warm process says of itself; sockets nobody listens on are removed."""
    folder = folder or private_dir(warm_dir())
    found = []
    for path in sorted(folder.glob("*.sock")) if folder else []:
        reply = _request(path, {"protocol": PROTOCOL, "op": "status"})
        if reply is None:
            with contextlib.suppress(OSError):
                path.unlink()
            continue
        found.append({**reply, "socket": str(path)})
    return found


def stop(path: Path) -> bool:
    return _request(path, {"protocol": PROTOCOL, "op": "stop"}) is not None


def _request(path: Path, request: dict) -> dict | None:
    connection = _connect(path, timeout=5.0)
    if connection is None:
        return None
    with connection:
        try:
            connection.sendall(json.dumps(request).encode() + b"\n")
            return next(_events(connection), None)
        except (OSError, ValueError):
            return None


# ---------------------------------------------------------------- the warm process

class _Relay(logging.Handler):
    """The library's warnings, sent to the command being answered (kept until there is one)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.send: Callable[[dict], None] | None = None
        self.kept: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.send is None:
            self.kept.append(message)
        else:
            with contextlib.suppress(OSError):
                self.send({"warning": message})


class WarmServer:
    """Answers the questions of `rag ask` with one loaded engine, one at a time."""

    def __init__(self, settings: Settings, path: Path, load: Callable[..., object] | None = None) -> None:
        from rag.pipeline import Engine

        self.settings, self.path = settings, path
        self.load = load or Engine.load
        self.relay = _Relay()
        logger = logging.getLogger("rag")
        logger.addHandler(self.relay)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        self.engine = self.load(settings)
        self.engine.warm_up()
        self.stamp = _index_stamp(settings.index_dir)
        self.started, self.answered, self.running = time.time(), 0, True

    def serve(self) -> None:
        """Listen until `warm_idle` seconds pass without a question, or a stop request."""
        listener = _listen(self.path)
        if listener is None:
            return  # another warm process serves this key already
        self.inode = self.path.stat().st_ino  # removed on exit only if still ours
        try:
            while self.running:
                listener.settimeout(self.settings.warm_idle)
                try:
                    connection, _ = listener.accept()
                except socket.timeout:
                    break
                with connection:
                    with contextlib.suppress(OSError, ValueError):
                        self.handle(connection)
        finally:
            listener.close()
            with contextlib.suppress(OSError):
                if _same_socket(self.path, self.inode):
                    self.path.unlink()

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(10.0)  # for the request; a command that sends nothing is dropped
        request = _read_request(connection)

        def send(event: dict) -> None:
            connection.sendall(json.dumps(event, ensure_ascii=False).encode() + b"\n")

        if not isinstance(request, dict) or request.get("protocol") != PROTOCOL:
            send({"error": "the warm process speaks another protocol; run: rag warm stop", "exit_code": 1})
            return
        if request.get("op") in ("status", "stop"):
            send({"pid": os.getpid(), "index_dir": str(self.settings.index_dir), "generator": self.settings.generator,
                  "started": self.started, "answered": self.answered, "idle_exit_s": self.settings.warm_idle})
            self.running = request["op"] != "stop"
            return
        connection.settimeout(ANSWER_TIMEOUT)
        self.relay.send = send
        try:
            for message in self.relay.kept:
                send({"warning": message})
            self.relay.kept = []
            reply = self.answer(request, send)
        except RagError as exc:
            reply = {"error": str(exc), "exit_code": exc.exit_code}
        except (OSError, ValueError):
            raise
        except Exception as exc:  # a bug: one line for the user, as in process
            reply = {"error": f"internal error: {type(exc).__name__}: {exc}", "exit_code": 1}
        finally:
            self.relay.send = None
        self.answered += 1  # before the reply: a command told its answer may ask `rag warm` at once
        send(reply)

    def answer(self, request: dict, send: Callable[[dict], None]) -> dict:
        from rag.errors import UsageError
        from rag.pipeline import answer
        from rag.render import answer_json, answer_lines, json_text

        overrides = request.get("overrides")
        question = request.get("question")
        if not isinstance(overrides, dict) or set(overrides) - set(PER_REQUEST) or not isinstance(question, str):
            raise UsageError("malformed request to the warm process")
        self.reload_if_rebuilt()
        engine = dataclasses.replace(self.engine, settings=self.engine.settings.with_overrides(**overrides))
        streamed: list[str] = []

        def token(piece: str) -> None:
            streamed.append(piece)
            send({"token": piece})

        try:
            result = answer(question, engine, mode=engine.settings.retrieval,
                            on_token=None if request.get("json") else token)
        finally:
            self.engine._generator = self.engine._generator or engine._generator  # loaded for this question
        if request.get("json"):
            return {"json": json_text(answer_json(result, engine.compute))}
        return {"lines": answer_lines(result, "".join(streamed))}

    def reload_if_rebuilt(self) -> None:
        """A rebuilt index (`rag index`) is loaded before the next answer; the models are kept."""
        stamp = _index_stamp(self.settings.index_dir)
        if stamp != self.stamp:
            self.engine = self.load(self.settings, generator=self.engine._generator, embedder=self.engine.embedder)
            self.stamp = stamp


def _index_stamp(index_dir: Path) -> tuple:
    """Changes when the index is rebuilt (its CURRENT pointer is replaced)."""
    try:
        info = (index_dir / "CURRENT").stat()
        return info.st_ino, info.st_mtime_ns, (index_dir / "CURRENT").read_bytes()[:256]
    except OSError:
        return ()


def _read_request(connection: socket.socket) -> object:
    data = b""
    while b"\n" not in data:
        piece = connection.recv(65536)
        if not piece:
            break
        data += piece
        if len(data) > MAX_REQUEST:
            return None
    try:
        return json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return None


def _listen(path: Path) -> socket.socket | None:
    """A listening socket at `path`, replacing a stale one; None when a live process has it."""
    if _connect(path, timeout=2.0) is not None:
        return None
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket itself: this user only
    try:
        listener.bind(str(path))
    finally:
        os.umask(old)
    listener.listen(16)
    return listener


def _same_socket(path: Path, inode: int | None) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def main(argv: list[str]) -> int:
    """`python -m rag.warm SOCKET SETTINGS_JSON`, started by `rag ask`."""
    path, settings = Path(argv[0]), settings_from(json.loads(argv[1]))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leaves through serve()'s cleanup
    server = WarmServer(settings, path)
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
