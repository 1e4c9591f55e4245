"""Reading a corpus folder: every .txt and .md file, decoded as UTF-8, with the metadata we can find."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from rag.errors import CorpusError

SUFFIXES = (".txt", ".md")
_DATE = re.compile(r"\b(?:date\s*:?\s*)?((?:19|20)\d\d-\d\d(?:-\d\d)?)\b", re.IGNORECASE)
_TITLE = re.compile(r"^\s*(?:titre|title)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Document:
    name: str  # path relative to the corpus folder, with '/' separators
    text: str  # exactly as stored (UTF-8 decoded); offsets point into it
    sha256: str
    title: str | None = None
    date: str | None = None


def load_corpus(folder: Path) -> list[Document]:
    """All documents under `folder`, sorted by name. Raises CorpusError naming the bad file."""
    if not folder.exists():
        raise CorpusError(f"corpus folder {folder} does not exist; pass --corpus DIR with your .txt/.md files")
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder; pass --corpus DIR with your .txt/.md files")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
    documents = [read_document(p, p.relative_to(folder).as_posix()) for p in paths]
    documents = [d for d in documents if d.text.strip()]
    if not documents:
        raise CorpusError(f"corpus folder {folder} holds no non-empty .txt or .md file")
    return documents


def read_document(path: Path, name: str) -> Document:
    data = path.read_bytes()
    if b"\x00" in data:
        raise CorpusError(f"{path} looks like a binary file, not text; remove it from the corpus folder")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CorpusError(
            f"{path} is not valid UTF-8 (byte {exc.start}); convert it, e.g. iconv -f latin1 -t utf-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a BOM is not content; offsets then count from the first real character
    return Document(
        name=name,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        title=_find_title(text),
        date=_find_date(text),
    )


def _find_title(text: str) -> str | None:
    match = _TITLE.search(text[:2000])
    if match:
        return match.group(1).strip()
    for line in text.splitlines()[:5]:
        line = line.strip()
        # A short first line without a final full stop reads as a headline.
        if 10 <= len(line) <= 150 and not line.endswith((".", ":", ";")):
            return line
        if line:
            break
    return None


def _find_date(text: str) -> str | None:
    match = _DATE.search(text[:300])
    return match.group(1) if match else None
