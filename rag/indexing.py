"""Indexing a collection's folder: read it (reusing the text of unchanged files), build the index
(reusing the vectors of unchanged chunks), remember the folder. Shared by `rag index`, `--watch`
and uploads from the web page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rag import store
from rag.collections import Collection, remember
from rag.documents import Corpus, no_documents_message, scan_corpus
from rag.embedders import Embedder
from rag.errors import CorpusError


@dataclass
class Indexed:
    collection: Collection
    corpus: Corpus
    build: store.BuildReport
    stored: list[str] = field(default_factory=list)  # names given to uploaded files (Engines.add)


def index_collection(collection: Collection, corpus_dir: Path, embedder: Embedder, chunk_chars: int, *,
                     strict: bool = False, wait: float = 0.0,
                     on_read: Callable[[Corpus], None] | None = None,
                     read_progress: Callable[[int, int], None] | None = None,
                     embed_progress: store.Progress | None = None,
                     vectors: bool | None = None) -> Indexed:
    """Read `corpus_dir` and (re)build `collection`'s index from it. `on_read` sees the ingestion
    report before embedding starts (so a user reads what was skipped without waiting). `vectors`: with
    chunk vectors, or words and sub-words only (None: as the current index, see `store.build`)."""
    corpus = scan_corpus(corpus_dir, strict, store.previous_documents(collection.index_dir), read_progress,
                         exclude=(collection.index_dir,))
    if on_read:
        on_read(corpus)
    if not corpus.documents:
        raise CorpusError(no_documents_message(corpus_dir, corpus))
    report = store.build(collection.index_dir, corpus.documents, embedder, chunk_chars, embed_progress, wait=wait,
                         vectors=vectors)
    return Indexed(remember(collection, corpus_dir), corpus, report)


def watch_changes(folder: Path, stop=None, exclude: tuple[Path, ...] = ()) -> Iterator[set[str]]:
    """Names of files added, changed or deleted under `folder`, one set per batch of changes
    (watchfiles: inotify where there is one, polling elsewhere; changes a second apart are batched).
    Changes inside `exclude` (the index being written, when it lies in the folder) are not changes."""
    from watchfiles import watch

    root = folder.resolve()
    excluded = [e.resolve() for e in exclude if not root.is_relative_to(e.resolve())]
    for changes in watch(folder, debounce=1000, step=200, stop_event=stop, raise_interrupt=True):
        paths = [Path(path) for _, path in changes]
        names = {p.relative_to(root).as_posix() for p in paths
                 if p.is_relative_to(root) and not any(p.is_relative_to(e) for e in excluded)}
        names = {n for n in names if not any(part.startswith((".", "~$")) for part in n.split("/"))}
        if names:
            yield names
