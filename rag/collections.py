"""Named collections: several indexes side by side, each remembering the folder it was built from.

`rag index --collection handbook --corpus ~/handbook` builds `collections/handbook/` (the folder of
all collections is `--collections-dir` / RAG_COLLECTIONS_DIR) and writes `collection.json` there with
the corpus folder, so `rag index --collection handbook` (or `--watch`) later needs no `--corpus`, and
`rag ask --collection handbook` / the page's picker find it. The index given by `--index` (default
`index/`) is the collection named "default".
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import UsageError

DEFAULT = "default"
INFO_FILE = "collection.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Collection:
    name: str
    index_dir: Path
    corpus_dir: Path | None  # None: not remembered (an index built before collections existed)

    @property
    def built(self) -> bool:
        return (self.index_dir / "CURRENT").is_file()


def check_name(name: str) -> str:
    """A collection name is a folder name: letters, digits, '-' and '_' (no path tricks).

    >>> check_name("handbook-2024")
    'handbook-2024'
    >>> check_name("../etc")
    Traceback (most recent call last):
    ...
    rag.errors.UsageError: collection name '../etc' is not valid: use 1-63 letters, digits, '-' or '_'
    """
    if not _NAME.match(name or ""):
        raise UsageError(f"collection name {name!r} is not valid: use 1-63 letters, digits, '-' or '_'")
    return name


def locate(name: str | None, index_dir: Path, collections_dir: Path) -> Collection:
    """The collection called `name` (None or "default": the one at `index_dir`), built or not."""
    if name in (None, DEFAULT):
        return Collection(DEFAULT, index_dir, _remembered_corpus(index_dir))
    folder = collections_dir / check_name(name)
    return Collection(name, folder, _remembered_corpus(folder))


def remember(collection: Collection, corpus_dir: Path) -> Collection:
    """Write the collection's folder next to its index (after a successful build)."""
    collection.index_dir.mkdir(parents=True, exist_ok=True)
    info = {"name": collection.name, "corpus": str(corpus_dir.resolve())}
    tmp = collection.index_dir / (INFO_FILE + ".tmp")
    tmp.write_text(json.dumps(info, ensure_ascii=False, indent=1), "utf-8")
    os.replace(tmp, collection.index_dir / INFO_FILE)
    return Collection(collection.name, collection.index_dir, corpus_dir.resolve())


def list_collections(index_dir: Path, collections_dir: Path) -> list[Collection]:
    """The default collection (when built) and every collection folder, by name."""
    found = []
    default = locate(None, index_dir, collections_dir)
    if default.built:
        found.append(default)
    if collections_dir.is_dir():
        for folder in sorted(collections_dir.iterdir()):
            if folder.is_dir() and _NAME.match(folder.name) and folder.name != DEFAULT:
                found.append(Collection(folder.name, folder, _remembered_corpus(folder)))
    return found


def _remembered_corpus(index_dir: Path) -> Path | None:
    try:
        info = json.loads((index_dir / INFO_FILE).read_text("utf-8"))
        return Path(info["corpus"]) if isinstance(info, dict) and isinstance(info.get("corpus"), str) else None
    except (OSError, ValueError):
        return None
