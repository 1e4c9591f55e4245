"""Reading the user's files: one reader per format behind `read_file()`, which dispatches by suffix.

Readers return `Extracted` (see base.py) or raise `Unreadable` with the reason. Each reader module
imports its library only when a file of its format is read, so `rag --help` stays instant.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from rag.ingest.base import Extracted, Unreadable, looks_binary

__all__ = ["Extracted", "Unreadable", "READERS", "READER_VERSION", "read_file", "read_text", "reader_of"]

# Raise when a reader changes what it extracts: the text stored for unchanged files is then read again.
READER_VERSION = 1


def read_text(path: Path) -> Extracted:
    """A plain text file, kept exactly as stored (so offsets are offsets into the file itself).

    UTF-8 (with or without BOM) and UTF-16 with a BOM are read as such. Anything else is taken to be
    Windows-1252, the usual encoding of older French and English text files (Latin-1 where a byte is
    undefined there), and a notice says so: statistical detectors guess wrong on short French text
    (charset-normalizer reads "très" from Windows-1252 bytes as Central European "trčs").
    """
    data = path.read_bytes()
    notices: list[str] = []
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) and not data.startswith(b"\xff\xfe\x00\x00"):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError:
            raise Unreadable("binary content, not text") from None
    elif looks_binary(data):
        raise Unreadable("binary content, not text")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            try:
                text, encoding = data.decode("cp1252"), "Windows-1252"
            except UnicodeDecodeError:
                text, encoding = data.decode("latin-1"), "Latin-1"
            notices.append(f"not UTF-8 (byte {exc.start}): read as {encoding}")
    if "\x00" in text:
        raise Unreadable("binary content, not text")
    text = text.removeprefix("\ufeff")  # a BOM is not content; offsets count from the first real character
    return Extracted(text=text, notices=notices)


def _markdown(path: Path) -> Extracted:
    from rag.ingest.markdown import read_markdown

    return read_markdown(path)


def _pdf(path: Path) -> Extracted:
    from rag.ingest.pdf import read_pdf

    return read_pdf(path)


def _docx(path: Path) -> Extracted:
    from rag.ingest.docx import read_docx

    return read_docx(path)


def _html(path: Path) -> Extracted:
    from rag.ingest.html import read_html

    return read_html(path)


READERS: dict[str, tuple[str, Callable[[Path], Extracted]]] = {
    ".txt": ("txt", read_text),
    ".text": ("txt", read_text),
    ".md": ("md", _markdown),
    ".markdown": ("md", _markdown),
    ".mdx": ("md", _markdown),
    ".pdf": ("pdf", _pdf),
    ".docx": ("docx", _docx),
    ".html": ("html", _html),
    ".htm": ("html", _html),
}


def reader_of(path: Path) -> str:
    """The reader a file goes to, with the readers' version: 'pdf/1' ('' for no reader).

    >>> reader_of(Path("a.PDF")), reader_of(Path("b.xyz"))
    ('pdf/1', '')
    """
    kind = READERS.get(path.suffix.lower(), ("", None))[0]
    return f"{kind}/{READER_VERSION}" if kind else ""


def read_file(path: Path) -> tuple[str, Extracted]:
    """(format, extracted text) of one file; Unreadable says why a file gives nothing."""
    kind, reader = READERS.get(path.suffix.lower(), (None, None))
    if reader is None:
        raise Unreadable(f"unsupported format ({path.suffix or 'no extension'})")
    try:
        extracted = reader(path)
    except Unreadable:
        raise
    except (OSError, ValueError, KeyError, IndexError, AttributeError, TypeError, RuntimeError) as exc:
        # A damaged file makes parsing libraries raise all sorts of things; it is a skip, not a crash.
        raise Unreadable(f"could not be read as {kind.upper()}: {type(exc).__name__}: {str(exc)[:120]}") from None
    if not extracted.text.strip():
        raise Unreadable("no text")
    return kind, extracted
