"""HTML reader: the main content of a web page, without its menus, teasers and comment forms.

trafilatura finds the article: on the three devset pages it keeps every answer and drops what a
whole-page text keeps (a 30-language menu, "DW recommends", related posts with other dates, a
comment form), which matters because those teasers are distractors for the questions. It runs in
recall mode: the default and precision modes drop the headings and lists of a plain document page
(an exported handbook) although there is no boilerplate to remove. When trafilatura keeps almost
nothing of the page (a page that is mostly a list), or almost all of it (then as one glued
paragraph), the page's whole visible text is read instead, with its structure.
"""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import trafilatura
from lxml import etree

from rag.ingest.base import Extracted, Unreadable, assemble, clean, looks_binary

# Outside these shares of the visible text, trafilatura's "main content" is not used.
_MIN_SHARE, _MAX_SHARE = 0.15, 0.9
_DROPPED = {"script", "style", "noscript", "template", "nav", "svg", "iframe", "button", "select",
            "textarea", "form"}
# Elements that start a new paragraph, in HTML and in trafilatura's output (list, item, quote...).
_BLOCKS = {"p", "div", "section", "article", "main", "header", "footer", "aside", "ul", "ol", "li", "dl", "dt",
           "dd", "blockquote", "figure", "figcaption", "address", "table", "thead", "tbody", "tfoot", "caption",
           "details", "summary", "hr", "body", "list", "item", "quote"}
_ROWS = {"tr", "row"}
_CELLS = {"td", "th", "cell"}
_HEADING = re.compile(r"^h([1-6])$")
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.IGNORECASE)


def read_html(path: Path) -> Extracted:
    raw = path.read_bytes()
    if looks_binary(raw) and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unreadable("binary content, not text")
    page = _decode(raw)
    try:
        tree = lxml.html.document_fromstring(page)
    except (etree.ParserError, ValueError) as exc:
        raise Unreadable("empty HTML page") from exc
    visible = [block for body in tree.xpath("//body") for block in _blocks(body)]
    main = trafilatura.bare_extraction(
        page, favor_recall=True, include_tables=True, include_comments=False, include_images=False,
        include_links=False, with_metadata=False,
    )
    blocks = _blocks(main.body) if main is not None else []
    notices = []
    share = _length(blocks) / max(_length(visible), 1)
    if share < _MIN_SHARE and visible:
        notices.append("no main article found in the page; kept all its visible text")
    if not _MIN_SHARE <= share <= _MAX_SHARE:
        blocks = visible
    if not blocks:
        raise Unreadable("no text in the page")

    title = _title(tree)
    if title and not blocks[0][1]:
        blocks.insert(0, (title, 1))
    text, headings = assemble(blocks)
    return Extracted(text=text, title=title, headings=headings, notices=notices)


def _decode(raw: bytes) -> str:
    """UTF-8 when the bytes are UTF-8 (whatever the page declares), else the declared charset, else
    Windows-1252. An XML declaration is dropped: lxml refuses it in a decoded string."""
    try:
        page = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        declared = _CHARSET.search(raw[:4096])
        try:
            page = raw.decode(declared.group(1).decode("ascii") if declared else "cp1252", errors="replace")
        except LookupError:
            page = raw.decode("cp1252", errors="replace")
    return re.sub(r"^\s*<\?xml[^>]*>", "", page)


def _title(tree) -> str | None:
    """og:title, else <title>; cut to the page's <h1> when that is how it starts, which drops a
    trailing " | Site | date"."""
    found = tree.xpath("//meta[@property='og:title']/@content") or tree.xpath("//title/text()")
    title = clean(found[0]) if found else ""
    h1 = tree.xpath("//h1")
    h1 = clean(h1[0].text_content()) if h1 else ""
    if h1 and (not title or title.startswith(h1)):
        return h1
    return title or None


def _blocks(root) -> list[tuple[str, int]]:
    """(paragraph, heading level or 0) of an HTML tree or of trafilatura's XML body."""
    blocks: list[tuple[str, int]] = []
    line: list[str] = []

    def flush(level: int = 0) -> None:
        text = clean("".join(line))
        line.clear()
        if text:
            blocks.append((text, level))

    def walk(el) -> None:
        tag = el.tag if isinstance(el.tag, str) else None  # None: a comment
        heading = _HEADING.match(el.get("rend", "") if tag == "head" else tag or "")
        if tag is None or tag in _DROPPED or el.get("hidden") is not None:
            pass
        elif heading:
            flush()
            line.append("".join(el.itertext()))
            flush(int(heading.group(1)))
        elif tag in ("br", "lb"):
            line.append(" ")
        elif tag in _ROWS:
            flush()
            cells = (" ".join(t for t, _ in _blocks(c)) for c in el if c.tag in _CELLS)
            line.append(" | ".join(c for c in cells if c))
            flush()
        elif tag in ("pre", "code") and "\n" in "".join(el.itertext()).strip():
            flush()  # a code block: one paragraph per line, as Markdown fences are read
            blocks.extend((clean(ln), 0) for ln in "".join(el.itertext()).splitlines() if clean(ln))
        elif tag in _BLOCKS:
            flush()
            line.append(el.text or "")
            for child in el:
                walk(child)
            flush()
        else:
            line.append(el.text or "")
            for child in el:
                walk(child)
        line.append(el.tail or "")

    walk(root)
    flush()
    return blocks


def _length(blocks: list[tuple[str, int]]) -> int:
    return sum(len(text) for text, _ in blocks)

