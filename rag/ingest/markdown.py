"""Markdown reader: the text of a Markdown or MDX page without its syntax.

markdown-it-py parses the page (CommonMark plus tables) and the token stream is walked: link and
emphasis marks go, link text and inline code stay, images go, each list item, table row (cells
joined by " | ") and line of a code block is a paragraph of its own. YAML front matter gives the
title. MDX pages (React's docs) wrap text in JSX components (`<Note>`, `<TerminalBlock>`) and put
heading anchors in JSX comments (`{/*getting-started*/}`): the tags and comments are removed and
the text inside the components is read as Markdown.
"""

from __future__ import annotations

import re
from pathlib import Path

from markdown_it import MarkdownIt

from rag.ingest.base import Extracted, Unreadable, assemble, clean, looks_binary

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?\n)(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
# {/*jsx comment*/} and {#custom-heading-id}, left in the text of paragraphs and headings.
_ANCHORS = re.compile(r"\s*\{/\*.*?\*/\}|\s*\{#[\w-]+\}")
_TAGS = re.compile(r"<!--.*?-->|</?([A-Za-z][\w.-]*)[^<>]*>", re.DOTALL)
# HTML tags that end a paragraph; JSX components (capitalised) do too.
_BLOCK_TAGS = frozenset("p div br li ul ol dl dt dd tr td th table h1 h2 h3 h4 h5 h6 details summary "
                        "blockquote pre section article header footer figure figcaption hr".split())


def _strip_anchors(state) -> None:
    """Runs between block and inline parsing, so fenced and indented code blocks are never touched."""
    for token in state.tokens:
        if token.type == "inline":
            token.content = _ANCHORS.sub("", token.content)


_MD = MarkdownIt("commonmark", {"html": True}).enable("table")
_MD.core.ruler.after("block", "strip_anchors", _strip_anchors)


def read_markdown(path: Path) -> Extracted:
    raw = path.read_bytes()
    if looks_binary(raw):
        raise Unreadable("binary content, not text")
    try:
        source = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        source = raw.decode("cp1252", errors="replace")
    source = source.replace("\r\n", "\n")
    title = None
    front = _FRONT_MATTER.match(source)
    if front:
        source = source[front.end():]
        found = _FRONT_TITLE.search(front.group(1))
        title = clean(found.group(1).strip("\"'")) if found else None
    blocks = _blocks(source)
    if not blocks:
        raise Unreadable("no text in the file")

    if title is None and blocks[0][1] == 1:
        title = blocks[0][0]
    if title and not blocks[0][1]:
        blocks.insert(0, (title, 1))
    text, headings = assemble(blocks)
    return Extracted(text=text, title=title, headings=headings)


def _blocks(source: str) -> list[tuple[str, int]]:
    """(paragraph, heading level or 0) for each inline run, table row and code line."""
    blocks: list[tuple[str, int]] = []
    level, row = 0, None
    for token in _MD.parse(source):
        if token.type == "heading_open":
            level = int(token.tag[1])
        elif token.type == "heading_close":
            level = 0
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close":
            if any(row):
                blocks.append((" | ".join(cell for cell in row if cell), 0))
            row = None
        elif token.type == "inline":
            text = _inline(token.children or [])
            if row is not None:
                row.append(text)
            elif text:
                blocks.append((text, level))
        elif token.type in ("fence", "code_block"):
            blocks.extend((line, 0) for line in map(clean, token.content.splitlines()) if line)
        elif token.type == "html_block":
            inner = _TAGS.sub(_tag_break, token.content)
            if inner.strip():
                blocks.extend(_blocks(inner))
    return blocks


def _tag_break(match: re.Match) -> str:
    name = match.group(1) or ""
    return "\n\n" if name[:1].isupper() or name.lower() in _BLOCK_TAGS else ""


def _inline(children) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "html_inline" and child.content.lower().startswith("<br"):
            parts.append(" ")
    return clean("".join(parts))

