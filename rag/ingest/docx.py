"""DOCX reader: the body of a Word document as plain paragraphs, tables as " | " rows.

python-docx opens the package and reads the styles and core properties, but its
`Document.paragraphs` misses text that real files keep elsewhere: content controls (`w:sdt`, e.g. a
cover page holding the course title), text boxes (`w:txbxContent`, stored twice under
`mc:AlternateContent`) and symbol characters (`w:sym`, Wingdings arrows in "Options → Output").
So the body XML is walked in document order here. Skipped on purpose: the table of contents (stale
page references, and it repeats the headings), headers and footers (page furniture), deleted
revisions, field instructions and hidden text.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from docx import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.opc.exceptions import PackageNotFoundError
from lxml import etree

from rag.ingest.base import Extracted, Unreadable, assemble, clean

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"

# Symbol-font code points (w:sym w:char, without the 0xF000 private-use offset) that carry meaning.
_SYMBOLS = {
    "wingdings": {
        0x9F: "•", 0xA7: "▪", 0xA8: "◻", 0x6C: "●", 0x6E: "■", 0x71: "❑", 0x76: "❖", 0xD8: "➢",
        0xDF: "←", 0xE0: "→", 0xE1: "↑", 0xE2: "↓", 0xE7: "←", 0xE8: "→", 0xE9: "↑", 0xEA: "↓",
        0xEF: "⇦", 0xF0: "⇨", 0xF1: "⇧", 0xF2: "⇩", 0xFB: "✗", 0xFC: "✓", 0xFD: "☒", 0xFE: "☑",
    },
    "symbol": {
        0xAB: "↔", 0xAC: "←", 0xAD: "↑", 0xAE: "→", 0xAF: "↓", 0xDB: "⇔", 0xDC: "⇐", 0xDE: "⇒",
        0xA3: "≤", 0xB3: "≥", 0xB9: "≠", 0xB1: "±", 0xB4: "×", 0xB8: "÷", 0xB7: "•", 0xB0: "°",
        0xA5: "∞", 0xD6: "√", 0xE5: "∑", 0xBB: "≈", 0x61: "α", 0x62: "β", 0x64: "δ", 0x6D: "μ",
        0x70: "π", 0x73: "σ", 0x44: "Δ", 0x57: "Ω",
    },
}
# Style names (or ids, which Word localises: "Titre1", "Nadpis1") that mark a heading.
_HEADING_NAME = re.compile(r"^(?:heading|titre|nadpis|title)\s*(\d)?", re.IGNORECASE)
# A "heading" this long, or a long full sentence, is a paragraph wearing a heading style.
_MAX_HEADING = 200
# Titles that name no document: Word's defaults, and python-docx's when the file has no core.xml.
_GENERIC_TITLE = re.compile(r"^(?:document\s*\d*|word document|untitled|sans titre|microsoft word\b.*)$",
                            re.IGNORECASE)
_SKIPPED = {_W + t for t in ("del", "moveFrom", "pPr", "rPr", "sdtPr", "sdtEndPr", "instrText", "delText")}


def read_docx(path: Path) -> Extracted:
    try:
        doc = Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, etree.XMLSyntaxError) as exc:
        raise Unreadable("not a valid DOCX file") from exc
    paragraphs = _Reader(doc).blocks(doc.element.body)
    if not paragraphs:
        raise Unreadable("no text in the document")

    text, headings = assemble(paragraphs)
    title = clean(doc.core_properties.title or "")
    if not title or _GENERIC_TITLE.match(title):
        title = headings[0][1] if headings and headings[0][0] == 0 else None
    return Extracted(text=text, title=title, headings=headings)


class _Reader:
    """Turns body XML into (paragraph text, heading level or 0) in reading order."""

    def __init__(self, doc) -> None:
        self.styles = {s.style_id: s for s in doc.styles if s.type == WD_STYLE_TYPE.PARAGRAPH}

    def blocks(self, container) -> list[tuple[str, int]]:
        """Paragraphs, tables and block-level content controls of a body, cell or text box."""
        out: list[tuple[str, int]] = []
        for child in container:
            if child.tag == _W + "p":
                out += self.paragraph(child)
            elif child.tag == _W + "tbl":
                out += self.table(child)
            elif child.tag == _W + "sdt":
                gallery = child.find(f"{_W}sdtPr/{_W}docPartObj/{_W}docPartGallery")
                if gallery is None or gallery.get(_W + "val") != "Table of Contents":
                    for content in child.iterfind(_W + "sdtContent"):
                        out += self.blocks(content)
            elif child.tag in (_W + "customXml", _W + "ins"):
                out += self.blocks(child)
        return out

    def paragraph(self, p) -> list[tuple[str, int]]:
        """The paragraph, then the text boxes anchored in it."""
        style = self._style(p)
        if style is not None and (style.name or "").lower().startswith("toc"):
            return []
        boxes: list = []
        text = clean("".join(self._runs(p, boxes)))
        out = []
        if text:
            level = self._heading_level(p, style)
            out.append((text, 0 if _looks_like_paragraph(text) else level))
        for box in boxes:
            out += self.blocks(box)
        return out

    def table(self, tbl) -> list[tuple[str, int]]:
        """A row per line with cells joined by " | "; a one-column table (a note or tip box) is read
        as ordinary paragraphs, since its "cells" are not data."""
        rows = [row.findall(_W + "tc") for row in tbl.findall(_W + "tr")]
        if all(len(cells) <= 1 for cells in rows):
            return [block for cells in rows for cell in cells for block in self.blocks(cell)]
        out = []
        for cells in rows:
            texts = (" ".join(text for text, _ in self.blocks(cell)) for cell in cells)
            line = " | ".join(text for text in texts if text)
            if line:
                out.append((line, 0))
        return out

    def _runs(self, element, boxes: list):
        """Text of a paragraph's runs, descending into links, fields and inline content controls;
        text boxes met on the way are set aside in `boxes` to be read as paragraphs of their own."""
        for child in element:
            tag = child.tag
            if tag in _SKIPPED or (tag == _W + "r" and _hidden(child)):
                continue
            if tag == _W + "t":
                yield child.text or ""
            elif tag in (_W + "tab", _W + "br", _W + "cr"):
                yield " "
            elif tag == _W + "noBreakHyphen":
                yield "-"
            elif tag == _W + "sym":
                yield _symbol(child)
            elif tag == _M + "t":
                yield child.text or ""
            elif tag in (_W + "drawing", _W + "pict", _MC + "AlternateContent"):
                boxes.extend(_text_boxes([child]))
            else:
                yield from self._runs(child, boxes)

    def _style(self, p):
        style_id = p.find(f"{_W}pPr/{_W}pStyle")
        return self.styles.get(style_id.get(_W + "val")) if style_id is not None else None

    def _heading_level(self, p, style) -> int:
        """From the outline level (the paragraph's own, then its style chain's), else a heading-like
        style name or id ("Heading 2", "Titre2", "Nadpis 1 - Appendix")."""
        chain = []
        while style is not None and style not in chain:
            chain.append(style)
            style = style.base_style
        outlines = (e.find(f"{_W}pPr/{_W}outlineLvl") for e in [p] + [s.element for s in chain])
        outline = next((o for o in outlines if o is not None), None)
        if outline is not None:  # an explicit level decides; 9 is "body text" (a "Contents" title)
            level = int(outline.get(_W + "val", "9"))
            return 0 if level >= 9 else min(level + 1, 6)
        for s in chain:
            match = _HEADING_NAME.match(s.name or "") or _HEADING_NAME.match(s.style_id or "")
            if match:
                return min(int(match.group(1) or 1), 6)
        return 0


def _text_boxes(elements):
    """Outermost `w:txbxContent` in these elements, reading only the first branch of each
    `mc:AlternateContent` (the fallback branch repeats the same text box)."""
    for child in elements:
        if child.tag == _W + "txbxContent":
            yield child
        elif child.tag == _MC + "AlternateContent":
            yield from _text_boxes(child[:1])
        else:
            yield from _text_boxes(child)


def _symbol(sym) -> str:
    code = int(sym.get(_W + "char", "0"), 16)
    code = code - 0xF000 if code >= 0xF000 else code
    return _SYMBOLS.get(sym.get(_W + "font", "").lower(), {}).get(code, "")


def _hidden(run) -> bool:
    vanish = run.find(f"{_W}rPr/{_W}vanish")
    return vanish is not None and vanish.get(_W + "val", "true") not in ("0", "false")


def _looks_like_paragraph(text: str) -> bool:
    return len(text) > _MAX_HEADING or (len(text.split()) > 12 and text.endswith("."))

