"""The collections a server answers from: one `Engine` per collection, loaded when first asked for,
all sharing one embedder and one generator; uploads and removals re-index a collection and swap
its engine without a restart."""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from rag.collections import DEFAULT, Collection, list_collections, locate
from rag.errors import UsageError
from rag.indexing import Indexed, index_collection
from rag.ingest import READERS
from rag.pipeline import Engine
from rag.settings import Settings


@dataclass(frozen=True)
class Upload:
    name: str  # the name the user's browser gave
    path: Path  # where the server holds its bytes now (a temporary file)


@dataclass(frozen=True)
class UploadLimits:
    max_files: int = 20
    max_bytes: int = 50 * 1024 * 1024  # per file


def safe_file_name(name: str) -> str:
    """A file name that is only a name: no folder, no leading dot, no odd characters, bounded; the
    extension is kept even when nothing of the stem survives.

    >>> safe_file_name("../../etc/passwd.txt")
    'passwd.txt'
    >>> safe_file_name("Rapport d’été <final>.PDF")
    'Rapport dete _final.PDF'
    >>> safe_file_name(".bashrc.md")
    'bashrc.md'
    >>> safe_file_name("отчёт.txt")
    'document.txt'
    """
    base = re.split(r"[\\/]", name or "")[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot or not stem.strip(" ."):
        stem, suffix = base, ""
    suffix = re.sub(r"[^A-Za-z0-9]", "", suffix)[:10]
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_stem).strip(" ._")[:100].rstrip(" .") or "document"
    return f"{cleaned}.{suffix}" if suffix else cleaned


def free_name(folder: Path, name: str, taken: set[str]) -> str:
    """`name`, or `name (2)`, `name (3)`... when a file of that name exists or is being stored:
    an upload never replaces a file.

    >>> free_name(Path("/nonexistent"), "notes.txt", {"notes.txt"})
    'notes (2).txt'
    """
    stem, dot, suffix = name.rpartition(".")
    stem, suffix = (stem, dot + suffix) if dot else (name, "")
    candidate, n = name, 1
    while candidate in taken or (folder / candidate).exists():
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate


class Engines:
    def __init__(self, settings: Settings, generator=None, embedder=None) -> None:
        self.settings = settings
        self._generator = generator
        self._embedder = embedder
        self._engines: dict[str, Engine] = {}
        self._lock = threading.RLock()

    def collections(self) -> list[Collection]:
        return list_collections(self.settings.index_dir, self.settings.collections_dir)

    def names(self) -> list[str]:
        return [c.name for c in self.collections() if c.built]

    def collection(self, name: str | None) -> Collection:
        return locate(name or DEFAULT, self.settings.index_dir, self.settings.collections_dir)

    def get(self, name: str | None = None) -> Engine:
        """The engine of collection `name` (loaded once; the first loaded one lends its embedder and
        generator to the others)."""
        key = name or DEFAULT
        with self._lock:
            if key not in self._engines:
                collection = self.collection(key)
                settings = replace(self.settings, index_dir=collection.index_dir)
                engine = Engine.load(settings, self._generator, self._embedder)
                self._embedder = self._embedder or engine.embedder
                self._engines[key] = engine
            engine = self._engines[key]
            if self._generator is None and engine._generator is not None:
                self._generator = engine._generator
            if engine._generator is None and self._generator is not None:
                engine._generator = self._generator
            return engine

    def add(self, name: str, uploads: list[Upload], limits: UploadLimits = UploadLimits()) -> Indexed:
        """Store uploaded files in the collection's folder (safe names) and re-index it. A new
        collection gets its own folder, `<collections dir>/NAME/documents`."""
        if not uploads:
            raise UsageError("no file was uploaded")
        if len(uploads) > limits.max_files:
            raise UsageError(f"{len(uploads)} files at once; the limit is {limits.max_files}")
        for upload in uploads:
            suffix = Path(upload.name).suffix.lower()
            if suffix not in READERS:
                raise UsageError(f"{upload.name}: unsupported format ({suffix or 'no extension'}); "
                                 f"formats read: {', '.join(sorted(READERS))}")
            size = upload.path.stat().st_size
            if size > limits.max_bytes:
                raise UsageError(f"{upload.name} is {size / 2**20:.1f} MB; the limit is {limits.max_bytes / 2**20:.0f} MB per file")
        collection = self.collection(name)
        if collection.built and collection.corpus_dir is None:
            # Indexing only the uploads would drop the collection's own documents from its index.
            raise UsageError(f"collection {collection.name!r} does not record its folder; "
                             "re-index it once with: rag index --corpus DIR")
        folder = collection.corpus_dir or (collection.index_dir / "documents")
        folder.mkdir(parents=True, exist_ok=True)
        stored: list[str] = []
        for upload in uploads:
            name = free_name(folder, safe_file_name(upload.name), set(stored))
            (folder / name).write_bytes(upload.path.read_bytes())
            stored.append(name)
        done = self._reindex(collection, folder)
        done.stored = stored
        return done

    def remove(self, name: str, document: str) -> Indexed:
        """Delete one document from the collection's folder and re-index it."""
        collection = self.collection(name)
        if collection.corpus_dir is None:
            raise UsageError(f"collection {collection.name!r} does not record its folder; re-index it with --corpus")
        folder = collection.corpus_dir.resolve()
        target = (folder / document).resolve()
        indexed = self.get(collection.name).index.texts
        # Only a document of the index, inside the folder: not the folder's other files (gold.jsonl...)
        if (document not in indexed or not target.is_relative_to(folder) or not target.is_file()
                or target.relative_to(folder).as_posix() != document):
            raise UsageError(f"{document!r} is not a document of collection {collection.name!r}")
        others = [d for d in indexed if d != document]
        if not others:
            raise UsageError(f"{document!r} is the last document of collection {collection.name!r}; "
                             "a collection cannot be empty")
        # Set aside, not deleted, until the index without it is built: a failed build loses nothing.
        aside = target.with_name(f".removed-{target.name}")
        target.rename(aside)
        try:
            done = self._reindex(collection, folder)
        except BaseException:
            aside.rename(target)
            raise
        aside.unlink()
        return done

    def _reindex(self, collection: Collection, folder: Path) -> Indexed:
        engine = self._engines.get(collection.name)
        embedder = self._embedder or (engine.embedder if engine else None)
        if embedder is None:
            from rag.pipeline import load_configured_embedder

            embedder = self._embedder = load_configured_embedder(self.settings)
        done = index_collection(collection, folder, embedder, self.settings.chunk_chars, wait=120)
        with self._lock:
            self._engines.pop(collection.name, None)
        self.get(collection.name)
        return done
