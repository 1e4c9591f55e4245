"""The index on disk: chunk records (JSONL), vectors (.npy, float16), BM25 indexes, and a versioned
manifest; for a large corpus, the graph of its approximate (HNSW) FAISS index. The FAISS index is
given its vectors (those of vectors.npy) at load: they are stored once. Builds go to a new folder
and become current by an atomic rename of the CURRENT pointer, so a crash or Ctrl-C during a build
leaves the previous index usable. The manifest records the size and sha256 of every file of its
build, and its own checksum: a damaged file is reported at load, by name, before anything is parsed."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import collections
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.bridge import Bridge, vocabulary
from rag.chunking import Chunk, chunk_documents
from rag.documents import Document
from rag.embedders import Embedder, passage_embedder
from rag.errors import IndexBusy, IndexMismatch, IndexNotFound, IndexNotWritable
from rag.lexical import LexicalIndex, subwords

FORMAT = "rag-index"
# 2: documents.jsonl holds the extracted text; chunks hold offsets into it
# 3: the manifest holds the size and sha256 of each file of the build ("files"), and its own ("checksum")
# 4: each document and chunk records its language; passages are analysed with their own language pack
# 5: documents.jsonl.gz and chunks.jsonl.gz, gzip-compressed; vectors.npy and bridge.npy hold float16 (read as float32); dense.faiss only for HNSW, and then
#    only its graph (the vectors are those of vectors.npy); each bm25s model in one compressed
#    bm25.npz (float16 scores, gap-coded chunk numbers) instead of bm25s's own files (float32
#    scores, int32 chunk numbers; benchmarks/index_size.py has the sizes)
# 6: French words are stemmed with their accents, then folded ("opposèrent" -> "oppos"; folded first,
#    "opposerent" stayed whole): the BM25 terms of French text changed
# 7: French words go to their dictionary form before they are stemmed ("promis" -> "promettre",
#    "prirent" -> "prendre"): the BM25 terms of French text changed
# 8: a French word's dictionary form is followed to its own ("soutenus" -> "soutenu" -> "soutenir",
#    as "soutenu" already was): the BM25 terms of French text changed
# 9: a number glued to a stop word is two words ("de80", "2021les": text that lost its spaces): the
#    BM25 terms changed where a corpus has such glue
FORMAT_VERSION = 9
# Builds whose vectors and extracted text a new build may reuse (only their storage or terms changed since)
REUSABLE_VERSIONS = (4, 5, 6, 7, 8, 9)
DOCUMENTS, CHUNKS = "documents.jsonl.gz", "chunks.jsonl.gz"  # plain .jsonl in format 4
BUILD_NAME = re.compile(r"build-[0-9A-Za-z-]{1,80}")  # what CURRENT may name (never '/', '..', '.tmp')
EXACT_SEARCH_LIMIT = 50_000  # above this many chunks, HNSW instead of exact search


@dataclass
class Index:
    folder: Path
    manifest: dict
    chunks: list[Chunk]
    vectors: np.ndarray
    dense: object  # a faiss.Index; None for an index built without chunk vectors
    lexical: LexicalIndex
    bridge: Bridge
    texts: dict[str, Document] = dataclasses.field(default_factory=dict)  # by name: the indexed text
    subwords: LexicalIndex | None = None  # BM25 over character n-grams; None in an index built without it

    @property
    def language(self) -> str:
        return self.manifest.get("language", "fr")

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages of its documents, the most frequent first."""
        return tuple(self.manifest.get("languages", {})) or (self.language,)

    @property
    def documents(self) -> dict[str, dict]:
        return {d["name"]: d for d in self.manifest["documents"]}


@dataclass(frozen=True)
class BuildReport:
    folder: Path
    documents: int
    chunks: int
    embedded: int
    reused: int
    seconds: float


def current_folder(root: Path) -> Path:
    pointer = root / "CURRENT"
    if not pointer.is_file():
        raise IndexNotFound(f"no index in {root}; build it with: rag index --corpus DIR --index {root}")
    try:
        with pointer.open("rb") as handle:
            raw = handle.read(256)
    except OSError as exc:
        raise _unreadable(root, "CURRENT", exc) from None
    try:
        name = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        name = ""
    if not BUILD_NAME.fullmatch(name):
        raise _damaged(root, "CURRENT does not name a build")
    folder = root / name
    if not folder.is_dir():
        raise _damaged(root, f"CURRENT names {name}, which is missing")
    return folder


Progress = Callable[[str, int, int], None]  # (what is embedded, how many now, how many in all)


def build(
    root: Path,
    documents: list[Document],
    embedder: Embedder,
    chunk_chars: int,
    progress: Progress | None = None,
    wait: float = 0.0,
    vectors: bool | None = None,
) -> BuildReport:
    """Chunk, embed (reusing vectors of unchanged chunks from the current index), write, swap.

    `vectors=False` builds an index without chunk vectors, searched by words and sub-words only:
    embedding is nearly all the time a large folder takes (100 000 chunks: 2.5 minutes without
    it, hours with it on 2 cores). None keeps what the current build has (vectors when
    there is none), so a re-index after a change, or an upload, does not embed what the user chose
    not to.

    One build at a time per index folder: a second one waits `wait` seconds for the first, then
    fails with IndexBusy (two builds writing at once would each overwrite the other's result)."""
    from filelock import FileLock, Timeout

    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(root / ".build.lock")
        lock.acquire(timeout=wait)
    except Timeout:
        raise IndexBusy(f"another index build is running on {root}; wait for it to finish, then try again") from None
    except OSError as exc:  # found before any embedding is done, not after
        raise IndexNotWritable(f"cannot write to the index folder {root}: {exc.strerror or exc}") from None
    try:
        _remove_unfinished_builds(root)  # left by a build that was killed; no build is running now
        if vectors is None:
            vectors = has_vectors(root)
        return _build(root, documents, embedder, chunk_chars, progress, vectors)
    finally:
        lock.release()


def _build(root: Path, documents: list[Document], embedder: Embedder, chunk_chars: int,
           progress: Progress | None, with_vectors: bool = True) -> BuildReport:
    started = time.perf_counter()
    documents = [d if d.language else dataclasses.replace(d, language=_language_of(d)) for d in documents]
    chunks = chunk_documents(documents, chunk_chars)
    previous, previous_words = _reusable_vectors(root, embedder)
    missing = [c for c in chunks if c.id not in previous] if with_vectors else []
    fresh = dict(zip([c.id for c in missing], _embed(passage_embedder(embedder), [c.text for c in missing], "chunks", progress)))
    # stored as float16 (unit vectors: a cosine moves by 1e-4 at most) and searched as float32;
    # without vectors, a matrix of no columns (one row per chunk all the same)
    vectors = _compact(np.stack([previous.get(c.id, fresh.get(c.id)) for c in chunks])) if with_vectors \
        else np.zeros((len(chunks), 0), dtype=np.float16)
    bridge = _embed_vocabulary([c.text for c in chunks], [c.language for c in chunks], embedder, previous_words, progress)

    name = f"build-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
    staging = root / (name + ".tmp")
    try:
        staging.mkdir()
        # The extracted text of each document is stored once; chunks are offsets into it, so every
        # quote is exactly that text, whatever the file's format.
        with _write_records(staging / DOCUMENTS) as out:
            for document in documents:
                out.write(json.dumps(dataclasses.asdict(document), ensure_ascii=False) + "\n")
        with _write_records(staging / CHUNKS) as out:
            for chunk in chunks:
                record = dataclasses.asdict(chunk)
                del record["text"]
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        np.save(staging / "vectors.npy", vectors)
        index_type = _write_faiss(staging / "dense.faiss", vectors.astype(np.float32)) if with_vectors else NO_VECTORS
        languages = [c.language for c in chunks]
        LexicalIndex.build([c.text for c in chunks], languages).save(staging / "lexical")
        LexicalIndex.build([c.text for c in chunks], languages, analyzer=subwords).save(staging / "subwords")
        (staging / "bridge.json").write_text(json.dumps(list(zip(bridge.terms, bridge.surfaces)), ensure_ascii=False),
                                             encoding="utf-8")
        np.save(staging / "bridge.npy", _compact(bridge.vectors))
        files = {path.relative_to(staging).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
                 for path in sorted(staging.rglob("*")) if path.is_file()}
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "embedder": {"name": embedder.name, "dim": int(embedder.dim)},
            "chunking": {"max_chars": chunk_chars, "paragraphs": "one per non-blank line"},
            "faiss": index_type,
            "language": _majority_language(documents),
            "languages": dict(collections.Counter(d.language for d in documents).most_common()),
            "bridge": {"words": len(bridge.terms)},
            "count": len(chunks),
            "documents": [
                {"name": d.name, "sha256": d.sha256, "title": d.title, "date": d.date, "format": d.format,
                 "pages": len({p for _, p in d.pages}) or None, "chars": len(d.text)} for d in documents
            ],
            "files": files,
        }
        manifest["checksum"] = _manifest_checksum(manifest)
        # The manifest is written last: a folder without one is never a finished build.
        (staging / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        staging.rename(root / name)
        _point_to(root, name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _remove_old_builds(root, keep=name)
    return BuildReport(root / name, len(documents), len(chunks), len(missing),
                       len(chunks) - len(missing) if with_vectors else 0, time.perf_counter() - started)


NO_VECTORS = {"type": "none"}  # the manifest's "faiss" of an index built without chunk vectors


def has_vectors(root: Path) -> bool:
    """Whether the current build at `root` has chunk vectors (True when there is no build)."""
    try:
        return load_manifest(root).get("faiss") != NO_VECTORS
    except (IndexNotFound, IndexMismatch, OSError, ValueError):  # none yet, or unreadable: a new one has them
        return True

def load(root: Path, expected_embedder: str | None = None) -> Index:
    folder = current_folder(root)
    manifest = _read_manifest(folder)
    if expected_embedder and manifest["embedder"]["name"] != expected_embedder:
        raise IndexMismatch(
            f"the index in {root} was built with embedder {manifest['embedder']['name']!r}, not "
            f"{expected_embedder!r}; rebuild it with: rag index --embedder {expected_embedder}"
        )
    _verify(folder, manifest)
    try:
        import faiss

        texts = read_documents(folder)
        with _read_records(folder, CHUNKS) as handle:
            records = [json.loads(line) for line in handle]
        chunks = [Chunk(**r, text=texts[r["source"]].text[r["start"]:r["end"]]) for r in records]
        vectors = _read_vectors(folder / "vectors.npy")
        dense = None if manifest["faiss"] == NO_VECTORS else _read_faiss(folder / "dense.faiss", manifest["faiss"], vectors)
        lexical = LexicalIndex.load(folder / "lexical")
        subword_index = LexicalIndex.load(folder / "subwords") if (folder / "subwords").is_dir() else None
        bridge = _load_bridge(folder)
    except Exception as exc:  # any damaged file: one clear message, never a traceback
        raise IndexMismatch(f"the index in {root} is damaged ({type(exc).__name__}: {exc}); rebuild it with: rag index") from None
    if not (len(chunks) == manifest["count"] == vectors.shape[0] == (len(chunks) if dense is None else dense.ntotal)):
        raise IndexMismatch(f"the index in {root} is inconsistent (chunk and vector counts differ); rebuild it with: rag index")
    return Index(folder, manifest, chunks, vectors, dense, lexical, bridge, texts, subwords=subword_index)


def load_manifest(root: Path) -> dict:
    """The manifest of the current build of the index at `root` (cheap: no vectors are read)."""
    return _read_manifest(current_folder(root))


def read_documents(folder: Path) -> dict[str, Document]:
    """The documents of a build folder, with their extracted text, by name."""
    documents = {}
    with _read_records(folder, DOCUMENTS) as handle:
        for line in handle:
            record = json.loads(line)
            record["pages"] = tuple(tuple(p) for p in record["pages"])
            record["headings"] = tuple(tuple(h) for h in record["headings"])
            record["notices"] = tuple(record["notices"])
            documents[record["name"]] = Document(**record)
    return documents


def previous_documents(root: Path) -> dict[str, Document]:
    """Documents of the current build by file sha256, to skip parsing unchanged files; {} if none."""
    try:
        folder = current_folder(root)
        _verify(folder, _read_manifest(folder, REUSABLE_VERSIONS), [_records_name(folder, DOCUMENTS)])
        return {d.sha256: d for d in read_documents(folder).values()}
    except (IndexNotFound, IndexMismatch, OSError, EOFError, ValueError, KeyError, TypeError):
        return {}


def _read_manifest(folder: Path, versions: tuple[int, ...] = (FORMAT_VERSION,)) -> dict:
    """The manifest of a build folder, checked against its own checksum (cheap: a few kB); `versions`:
    the format versions accepted (an older one only to reuse what it holds)."""
    root = folder.parent
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _damaged(root, "manifest.json is missing") from None
    except OSError as exc:
        raise _unreadable(root, "manifest.json", exc) from None
    except ValueError:  # not UTF-8, or not JSON
        raise _damaged(root, "manifest.json is not valid JSON") from None
    if not isinstance(manifest, dict):
        raise _damaged(root, "manifest.json is not an index manifest")
    if manifest.get("format") != FORMAT or manifest.get("version") not in versions:
        raise IndexMismatch(
            f"the index in {folder} has format {manifest.get('format')} v{manifest.get('version')}, this "
            f"program reads {FORMAT} v{FORMAT_VERSION}; rebuild it with: rag index"
        )
    if manifest.get("checksum") != _manifest_checksum(manifest) or not _valid_files(manifest.get("files")):
        raise _damaged(root, "manifest.json does not match its checksum")
    return manifest


def _manifest_checksum(manifest: dict) -> str:
    """sha256 of the manifest without its "checksum" field, in a canonical form (sorted keys, ASCII)."""
    body = {key: value for key, value in manifest.items() if key != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")).hexdigest()


def _valid_files(files: object) -> bool:
    """Whether a manifest's "files" is {relative path inside the build: {"size": int, "sha256": str}}."""
    return isinstance(files, dict) and all(
        isinstance(name, str) and name and not name.startswith("/") and ".." not in name.split("/")
        and name != "manifest.json" and isinstance(entry, dict)
        and type(entry.get("size")) is int and isinstance(entry.get("sha256"), str)
        for name, entry in files.items()
    )


def _verify(folder: Path, manifest: dict, names: list[str] | None = None) -> None:
    """Check the files of a build (all of them, or `names`) against the sizes and sha256 that the
    manifest recorded when they were written: sizes first (a missing or cut file costs nothing to
    find), then the hashes. sha256 runs at about 1.5 GB/s per core where the CPU has SHA
    instructions (most x86-64 and ARM machines; blake2b has none and ran 3x slower): a 40 000-chunk
    index (200 MB) took 125 ms on one core, 65 ms on two."""
    root = folder.parent
    files = manifest["files"]
    names = sorted(files) if names is None else names
    for name in names:
        if name not in files:
            raise _damaged(root, f"manifest.json does not list {name}")
        try:
            size = (folder / name).stat().st_size
        except FileNotFoundError:
            raise _damaged(root, f"{name} is missing") from None
        except OSError as exc:
            raise _unreadable(root, name, exc) from None
        if size != files[name]["size"]:
            raise _damaged(root, f"{name} has {size} bytes, not {files[name]['size']}")

    def digest(name: str) -> str | OSError:
        try:
            return _sha256(folder / name)
        except OSError as exc:
            return exc

    # hashlib lets go of the GIL while hashing: the big files are hashed side by side
    biggest_first = sorted(names, key=lambda name: -files[name]["size"])
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        digests = dict(zip(biggest_first, pool.map(digest, biggest_first)))
    for name in names:
        if isinstance(digests[name], OSError):
            raise _unreadable(root, name, digests[name])
        if digests[name] != files[name]["sha256"]:
            raise _damaged(root, f"{name} does not match its checksum")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def _damaged(root: Path, what: str) -> IndexMismatch:
    return IndexMismatch(f"the index in {root} is damaged ({what}); rebuild it with: rag index")


def _unreadable(root: Path, name: str, exc: OSError) -> IndexMismatch:
    return IndexMismatch(f"cannot read the index in {root} ({name}: {exc.strerror or exc})")


def _reusable_vectors(root: Path, embedder: Embedder) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Vectors of the current build by chunk id and by vocabulary word, when it used the same
    embedder; else nothing."""
    try:
        folder = current_folder(root)
        manifest = _read_manifest(folder, REUSABLE_VERSIONS)  # v4 held the same vectors as float32
        if manifest["embedder"] != {"name": embedder.name, "dim": int(embedder.dim)}:
            return {}, {}
        # A damaged file is left out of reuse (and `rag index` so repairs the index); only the
        # files read here are checked: vectors can be reused when, say, dense.faiss is damaged.
        _verify(folder, manifest, ["vectors.npy", _records_name(folder, CHUNKS), "bridge.json", "bridge.npy"])
        vectors = _read_vectors(folder / "vectors.npy")
        with _read_records(folder, CHUNKS) as handle:
            ids = [json.loads(line)["id"] for line in handle]
        bridge = _load_bridge(folder)
    except (IndexNotFound, IndexMismatch, OSError, EOFError, ValueError, KeyError, TypeError):
        return {}, {}
    if len(ids) != len(vectors):
        return {}, {}
    words = dict(zip(bridge.surfaces, bridge.vectors))
    if vectors.shape[1] != int(embedder.dim):  # built without chunk vectors: only its words' are reusable
        return {}, words
    return dict(zip(ids, vectors)), words


def _load_bridge(folder: Path) -> Bridge:
    pairs = json.loads((folder / "bridge.json").read_text(encoding="utf-8"))
    vectors = _read_vectors(folder / "bridge.npy")
    if len(pairs) != len(vectors):
        raise ValueError("bridge words and vectors differ in number")
    return Bridge([t for t, _ in pairs], [w for _, w in pairs], vectors)


def _write_records(path: Path):
    """A JSON-lines file written gzip-compressed (the extracted text takes a third of its size)."""
    return gzip.open(path, "wt", encoding="utf-8", compresslevel=6)


def _records_name(folder: Path, name: str) -> str:
    """The file of `name` records in a build: compressed (format 5), or plain in a format 4 build
    whose text and vectors a new build reuses."""
    return name if (folder / name).exists() or not (folder / name.removesuffix(".gz")).exists() \
        else name.removesuffix(".gz")


def _read_records(folder: Path, name: str):
    found = _records_name(folder, name)
    if found.endswith(".gz"):
        return gzip.open(folder / found, "rt", encoding="utf-8")
    return (folder / found).open(encoding="utf-8")


def _compact(vectors: np.ndarray) -> np.ndarray:
    """Vectors as they are stored: float16, which halves the files (unit vectors lose nothing that
    changes a ranking: a cosine moves by 1e-4 at most); float32 for values float16 cannot hold."""
    vectors = np.asarray(vectors, dtype=np.float32)
    with np.errstate(over="ignore"):
        half = vectors.astype(np.float16)
    return half if np.isfinite(half).all() else vectors


def _read_vectors(path: Path) -> np.ndarray:
    """A (n, dim) matrix of stored vectors, as float32 whatever it was stored as."""
    vectors = np.load(path, allow_pickle=False)
    if vectors.ndim != 2 or vectors.dtype.kind != "f":
        raise ValueError(f"{path.name} does not hold a matrix of vectors")
    return vectors.astype(np.float32)


def _embed(embed: Callable[[list[str]], np.ndarray], texts: list[str], label: str, progress: Progress | None,
           batch: int = 32) -> list[np.ndarray]:
    vectors: list[np.ndarray] = []
    for i in range(0, len(texts), batch):
        vectors.extend(embed(texts[i : i + batch]))
        if progress:
            progress(label, min(batch, len(texts) - i), len(texts))
    return vectors


def _embed_vocabulary(texts: list[str], languages: list[str], embedder: Embedder, known: dict[str, np.ndarray],
                      progress: Progress | None = None) -> Bridge:
    pairs = vocabulary(texts, languages)
    missing = [w for _, w in pairs if w not in known]
    fresh = dict(zip(missing, _embed(embedder.embed, missing, "vocabulary words", progress, batch=256)))
    vectors = [known.get(w, fresh.get(w)) for _, w in pairs]
    matrix = np.stack(vectors).astype(np.float32) if vectors else embedder.embed([])  # (0, its dimension)
    return Bridge([t for t, _ in pairs], [w for _, w in pairs], matrix)


def _language_of(document: Document) -> str:
    """The language pack a document reads as, from its first pages; French when nothing tells."""
    from rag.text import detect_language

    return detect_language(document.text[:5000])


def _majority_language(documents: list[Document]) -> str:
    votes = collections.Counter(d.language for d in documents)
    return max(sorted(votes), key=votes.get) if votes else "fr"


def _write_faiss(path: Path, vectors: np.ndarray) -> dict:
    """The dense index's description for the manifest, and its file where one is needed. The exact
    (flat) index is only the vectors: nothing is written, it is made from vectors.npy at load. An
    HNSW graph takes minutes to build, so it is written, but without its vectors (faiss's
    IO_FLAG_SKIP_STORAGE): 272 bytes a chunk instead of 1 808 for 384 dimensions."""
    import faiss

    dim = vectors.shape[1]
    if len(vectors) <= EXACT_SEARCH_LIMIT:
        return {"type": "flat-ip"}
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.hnsw.efSearch = 96
    index.add(vectors)
    faiss.write_index(index, str(path), faiss.IO_FLAG_SKIP_STORAGE)
    return {"type": "hnsw-ip", "vectors": "vectors.npy", "M": 32, "efConstruction": 80, "efSearch": 96}


def _read_faiss(path: Path, info: dict, vectors: np.ndarray):
    """The dense index over `vectors` (float32): exact search over them, or the stored HNSW graph
    given them as its storage (searches exactly as the graph and vectors written together did)."""
    import faiss

    storage = faiss.IndexFlatIP(vectors.shape[1])
    storage.add(vectors)
    if info["type"] == "flat-ip":
        return storage
    index = faiss.read_index(str(path))
    if not isinstance(index, faiss.IndexHNSW) or index.storage is not None or index.ntotal != storage.ntotal:
        raise ValueError("dense.faiss is not the HNSW graph of these vectors")
    index.storage = storage
    index.own_fields = False
    index.referenced_objects = [storage]  # kept alive as long as the index
    return index


def _point_to(root: Path, name: str) -> None:
    tmp = root / "CURRENT.tmp"
    tmp.write_text(name + "\n")
    os.replace(tmp, root / "CURRENT")  # atomic on POSIX: readers see the old or the new build


def _remove_unfinished_builds(root: Path) -> None:
    for child in root.iterdir():
        if child.is_dir() and child.name.startswith("build-") and child.name.endswith(".tmp"):
            shutil.rmtree(child, ignore_errors=True)


def _remove_old_builds(root: Path, keep: str) -> None:
    for child in root.iterdir():
        if child.is_dir() and child.name.startswith("build-") and child.name != keep:
            shutil.rmtree(child, ignore_errors=True)
