"""Reading a corpus folder: every file of a known format through its reader (rag.ingest), with an
honest report of what was read and what was skipped, and why."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.errors import CorpusError
from rag.ingest import READERS, Unreadable, read_file, reader_of

_DATE = re.compile(r"\b(?:date\s*:?\s*)?((?:19|20)\d\d-\d\d(?:-\d\d)?)\b", re.IGNORECASE)
_TITLE = re.compile(r"^\s*(?:titre|title)\s*:\s*(.+)$", re.IGNORECASE | re.MULTILINE)
FORMATS = sorted({suffix for suffix in READERS})


@dataclass(frozen=True)
class Document:
    name: str  # path relative to the corpus folder, with '/' separators
    text: str  # the extracted text (for .txt files, the file itself); offsets point into it
    sha256: str  # of the file's bytes
    title: str | None = None
    date: str | None = None
    format: str = "txt"
    pages: tuple[tuple[int, int], ...] = ()  # (start offset, physical page) of each page with text
    headings: tuple[tuple[int, str, int], ...] = ()  # (start offset, heading, level)
    notices: tuple[str, ...] = ()  # read, but something the user should know
    reader: str = ""  # which reader, of which version, made `text` ("pdf/1"): reuse needs the same
    language: str = ""  # the code of the language pack it reads as ("fr", "en"); set when indexed

    def page_at(self, offset: int) -> int | None:
        """The physical page holding `offset` (PDF), or None.

        >>> Document("a.pdf", "one\\n\\ntwo", "0", pages=((0, 1), (5, 3))).page_at(6)
        3
        """
        page = None
        for start, number in self.pages:
            if start > offset:
                break
            page = number
        return page

    def context_at(self, offset: int) -> str:
        """What the text at `offset` stands under: the document's title and the headings above it,
        one per level, the outermost first (a regulation's number and town in its title hold for
        every row of its tables).

        >>> d = Document("r.pdf", "", "0", title="Règlement 1324",
        ...              headings=((0, "1. Objet", 1), (9, "1.1 Portée", 2), (20, "2. Tarifs", 1), (30, "2.1 Unités", 2)))
        >>> d.context_at(35)
        'Règlement 1324\\n2. Tarifs\\n2.1 Unités'
        """
        chain: list[tuple[int, str, int]] = []
        for heading in self.headings:
            if heading[0] > offset:
                break
            chain = [h for h in chain if h[2] < heading[2]] + [heading]
        return "\n".join(([self.title] if self.title else []) + [text for _, text, _ in chain])

    def heading_at(self, offset: int) -> str | None:
        """The last heading that starts at or before `offset`, or None."""
        heading = None
        for start, text, _level in self.headings:
            if start > offset:
                break
            heading = text
        return heading


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str


@dataclass
class Corpus:
    documents: list[Document]
    skipped: list[Skipped] = field(default_factory=list)
    hidden: int = 0  # files in hidden folders or hidden themselves (.git, .DS_Store, ~$lock files)
    reused: int = 0  # documents whose extracted text came from the previous index (file unchanged)
    seconds: float = 0.0


Progress = Callable[[int, int], None]  # (files done, files in all)


def scan_corpus(folder: Path, strict: bool = False, previous: dict[str, Document] | None = None,
                progress: Progress | None = None, exclude: tuple[Path, ...] = ()) -> Corpus:
    """Every readable document under `folder`, sorted by name, and every file skipped with its reason.

    `previous` maps sha256 to documents of the last build: an unchanged file is not parsed again
    (unless another reader, or another version of it, would read it now: a file renamed from .txt
    to .md, or a reader fixed since).
    With `strict`, the first file that cannot be read raises CorpusError instead of being skipped.
    Folders in `exclude` (the index itself, when it lies inside the corpus) are not read.
    """
    if not folder.exists():
        raise CorpusError(f"corpus folder {folder} does not exist; pass --corpus DIR with your documents")
    if not folder.is_dir():
        raise CorpusError(f"{folder} is not a folder; pass --corpus DIR with your documents")
    started = time.perf_counter()
    paths, hidden = [], 0
    # an excluded folder inside the corpus is skipped; one that holds the corpus (a collection
    # keeping its uploads in <index>/documents) excludes nothing
    excluded = [e.resolve() for e in exclude if not folder.resolve().is_relative_to(e.resolve())]
    for path in sorted(folder.rglob("*")):
        if excluded and any(path.resolve().is_relative_to(e) for e in excluded):
            continue
        relative = path.relative_to(folder)
        if any(part.startswith((".", "~$")) for part in relative.parts):
            hidden += path.is_file()
        elif path.is_file():
            paths.append(path)
    corpus = Corpus([], hidden=hidden)
    for done, path in enumerate(paths, start=1):
        name = path.relative_to(folder).as_posix()
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are no text in the name (surrogate escapes)
            shown = name.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            if strict:
                raise CorpusError(f"{shown}: the file name is not UTF-8; rename it") from None
            corpus.skipped.append(Skipped(shown, "the file name is not UTF-8; rename it"))
            continue
        try:
            document, reused = _read(path, name, previous or {})
            corpus.documents.append(document)
            corpus.reused += reused
        except Unreadable as why:
            if strict:
                raise CorpusError(f"{name}: {why} (remove it, or index without --strict to skip it)") from None
            corpus.skipped.append(Skipped(name, str(why)))
        except OSError as exc:
            if strict:
                raise CorpusError(f"{name}: cannot be read: {exc.strerror or exc}") from None
            corpus.skipped.append(Skipped(name, f"cannot be read: {exc.strerror or exc}"))
        if progress:
            progress(done, len(paths))
    corpus.seconds = time.perf_counter() - started
    return corpus


def load_corpus(folder: Path, strict: bool = False) -> list[Document]:
    """The readable documents under `folder`; CorpusError when there is none."""
    corpus = scan_corpus(folder, strict)
    if not corpus.documents:
        raise CorpusError(no_documents_message(folder, corpus))
    return corpus.documents


def no_documents_message(folder: Path, corpus: Corpus) -> str:
    why = f" ({len(corpus.skipped)} skipped: {corpus.skipped[0].name}: {corpus.skipped[0].reason}…)" if corpus.skipped else ""
    return f"corpus folder {folder} holds no readable document{why}; formats read: {', '.join(FORMATS)}"


def _read(path: Path, name: str, previous: dict[str, Document]) -> tuple[Document, bool]:
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    known = previous.get(digest)
    if known is not None and known.reader == reader_of(path):
        return replace(known, name=name), True
    kind, extracted = read_file(path)
    text = extracted.text
    return Document(
        name=name,
        text=text,
        sha256=digest,
        title=extracted.title or (_find_title(text) if kind == "txt" else None),
        date=_find_date(text),
        format=kind,
        pages=tuple(tuple(p) for p in extracted.pages),
        headings=tuple(tuple(h) for h in extracted.headings),
        notices=tuple(extracted.notices),
        reader=reader_of(path),
    ), False


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
