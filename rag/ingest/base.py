"""What every reader returns: the text that is indexed and quoted, and where its pages and sections start.

A reader turns one file into `Extracted`. The text is what the index stores and what every quote
is cut from: a citation's `start:end` are offsets into this text, so a quote is always exactly it.

Text layout every reader follows (the chunker relies on it):
- one paragraph per line: the lines of a paragraph are joined with single spaces (a word hyphenated
  at a line end is re-joined, a real hyphen is kept), paragraphs are separated by a blank line;
- no markup: no Markdown syntax, no HTML tags, no page furniture (running headers, page numbers);
- headings are paragraphs of their own and are also listed in `headings`;
- a table row is one line, its cells separated by " | ".
"""

from __future__ import annotations

from dataclasses import dataclass, field


class Unreadable(Exception):
    """The file cannot give any text; the message says why in a few words ("no text layer (scanned?)",
    "encrypted PDF", "not a valid DOCX file"). The ingestion report shows it and skips the file."""


@dataclass(frozen=True)
class Extracted:
    text: str
    title: str | None = None
    # (start offset, 1-based physical page number) of each page, in order; empty if the format has no pages
    pages: list[tuple[int, int]] = field(default_factory=list)
    # (start offset, heading text, level 1-6) of each heading, in order
    headings: list[tuple[int, str, int]] = field(default_factory=list)
    # Something the user should know although the file was read (e.g. "pages 3-4 have no text layer").
    notices: list[str] = field(default_factory=list)


def clean(text: str) -> str:
    r"""One line of prose: soft hyphens removed, every run of white space (non-breaking too) one space.

    >>> clean("can\u00addi\u00adda\u00adture  du\u00a0CNRS\n")
    'candidature du CNRS'
    """
    return " ".join(text.replace("\u00ad", "").split())


def assemble(blocks: list[tuple[str, int]]) -> tuple[str, list[tuple[int, str, int]]]:
    r"""The text (one paragraph per block, separated by blank lines) and the headings' offsets, from
    (paragraph, heading level or 0) blocks in reading order.

    >>> assemble([("Intro", 1), ("Un texte.", 0)])
    ('Intro\n\nUn texte.', [(0, 'Intro', 1)])
    """
    headings, offset = [], 0
    for paragraph, level in blocks:
        if level:
            headings.append((offset, paragraph, level))
        offset += len(paragraph) + 2
    return "\n\n".join(paragraph for paragraph, _ in blocks), headings


def looks_binary(raw: bytes) -> bool:
    r"""Bytes that are no text file: a NUL byte, or many control bytes, in the first 8 kB (UTF-16
    text, which has NUL bytes, is recognised by its BOM before this is asked).

    >>> looks_binary(b"# Titre\n\nDu texte."), looks_binary(b"\x00\x01binary"), looks_binary(bytes(range(256)) * 4)
    (False, True, True)
    """
    head = raw[:8192]
    controls = sum(1 for b in head if b < 9 or 13 < b < 32)
    return b"\x00" in head or controls > 0.05 * max(len(head), 1)
