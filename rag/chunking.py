"""Paragraph-aware chunking: paragraphs merged up to a size limit, long ones split at sentence
boundaries. Every chunk keeps its file name and exact character offsets into that file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rag.documents import Document
from rag.text import normalize, sentence_spans

_PARAGRAPH = re.compile(r"[^\n]*\S[^\n]*")  # a non-blank line; news text puts one paragraph per line


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    start: int
    end: int
    paragraph: int  # 1-based number of the first paragraph of the chunk in its file
    text: str  # == document.text[start:end]
    language: str = "fr"  # the language pack its document is analysed with


def chunk_id(source: str, text: str) -> str:
    """Stable id from content: the same text in the same file always gets the same id."""
    return hashlib.sha256(f"{source}\n{normalize(text)}".encode()).hexdigest()[:16]


def paragraph_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each paragraph, stripped of surrounding spaces.

    >>> paragraph_spans("Un.\\n\\n  Deux.  \\nTrois.")
    [(0, 3), (7, 12), (15, 21)]
    """
    spans = []
    for m in _PARAGRAPH.finditer(text):
        a, b = m.start(), m.end()
        while text[a].isspace():
            a += 1
        while text[b - 1].isspace():
            b -= 1
        spans.append((a, b))
    return spans


def chunk_document(doc: Document, max_chars: int = 700) -> list[Chunk]:
    pieces: list[tuple[int, int, int]] = []  # (start, end, paragraph number)
    for number, (a, b) in enumerate(paragraph_spans(doc.text), start=1):
        if b - a <= max_chars:
            pieces.append((a, b, number))
        else:
            pieces.extend((s, e, number) for s, e in _split_long(doc.text, a, b, max_chars))
    chunks: list[Chunk] = []
    group: list[tuple[int, int, int]] = []
    for piece in pieces:
        if group and piece[1] - group[0][0] > max_chars:
            chunks.append(_make_chunk(doc, group))
            group = []
        group.append(piece)
    if group:
        chunks.append(_make_chunk(doc, group))
    return chunks


def chunk_documents(docs: list[Document], max_chars: int = 700) -> list[Chunk]:
    chunks = [c for d in docs for c in chunk_document(d, max_chars)]
    # Identical text twice in one file would give one id twice; keep the first occurrence only.
    seen: set[str] = set()
    return [c for c in chunks if not (c.id in seen or seen.add(c.id))]


def _make_chunk(doc: Document, group: list[tuple[int, int, int]]) -> Chunk:
    start, end = group[0][0], group[-1][1]
    text = doc.text[start:end]
    return Chunk(chunk_id(doc.name, text), doc.name, start, end, group[0][2], text, doc.language or "fr")


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Split one long paragraph at sentence ends, and a sentence longer than the limit at spaces."""
    parts: list[tuple[int, int]] = []
    for a, b in sentence_spans(text, start, end):
        while b - a > max_chars:
            cut = text.rfind(" ", a, a + max_chars)
            cut = cut if cut > a else a + max_chars
            parts.append((a, cut))
            a = cut
            while a < b and text[a].isspace():
                a += 1
        if b > a:
            parts.append((a, b))
    merged: list[tuple[int, int]] = []
    for a, b in parts:
        if merged and b - merged[-1][0] <= max_chars:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged
