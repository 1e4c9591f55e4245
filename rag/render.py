"""Turning answers and hits into JSON objects and terminal text.

Everything printed that comes from a document, a file name or a request goes through
`safe_terminal` (or `json_text` for --json): a document or a file name holding an escape sequence
(`\x1b]0;title\x07`, `\x1b[2J`) must not retitle, clear or recolour the user's terminal.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import TYPE_CHECKING

import click

from rag import languages

if TYPE_CHECKING:  # the error path of every command uses safe_terminal: no numpy nor index code for it
    from rag.compute import Compute
    from rag.pipeline import Answer
    from rag.retrieval import Hit


# C0 controls, DEL, C1 controls (the 8-bit CSI \x9b works like \x1b[ on some terminals), the
# bidirectional embeddings, overrides and isolates (they reorder what is shown: "txt.exe" can be
# displayed as "exe.txt"), and lone surrogates (the bytes of a file name that is not UTF-8).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def safe_terminal(text: object, keep_newlines: bool = False) -> str:
    r"""`text` with every control character shown as an escape, so printing it cannot drive the terminal.

    Newlines (and tabs) are kept with `keep_newlines` (an answer's own lines), and shown as `\n`
    otherwise (a file name). A byte of a file name that is not UTF-8 is shown as that byte.

    >>> safe_terminal("evil\x1b]0;pwned\x07.txt")
    'evil\\x1b]0;pwned\\x07.txt'
    >>> safe_terminal("two\nlines.txt"), safe_terminal("a\nb\rc", keep_newlines=True)
    ('two\\nlines.txt', 'a\nb\\rc')
    >>> safe_terminal("\x9b31m \x7f \u202etxt.exe bad\udcff.txt é")
    '\\x9b31m \\x7f \\u202etxt.exe bad\\xff.txt é'
    """
    def escape(match: re.Match) -> str:
        char = match.group()
        if keep_newlines and char in "\n\t":
            return char
        if char in _NAMED:
            return _NAMED[char]
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for a byte that is not UTF-8
            return f"\\x{code - 0xDC00:02x}"
        return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"

    return _UNSAFE.sub(escape, str(text))


def json_text(value: object) -> str:
    r"""JSON for the terminal. json.dumps escapes C0 controls but not DEL, C1 controls, bidi
    overrides nor lone surrogates: those are written as \uXXXX too (the same string once parsed).

    >>> print(json_text({"s": "a\x1b[2J\x9b\u202e"}))
    {
      "s": "a\u001b[2J\u009b\u202e"
    }
    """
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False, indent=2))


def hit_json(hit: Hit) -> dict:
    c = hit.chunk
    return {
        "source": c.source,
        "paragraph": c.paragraph,
        "start": c.start,
        "end": c.end,
        "score": round(hit.score, 6),
        "rank": hit.rank,
        "lexical_rank": hit.lexical_rank,
        "lexical_score": None if hit.lexical_score is None else round(hit.lexical_score, 4),
        "dense_rank": hit.dense_rank,
        "dense_score": None if hit.dense_score is None else round(hit.dense_score, 4),
        "text": c.text,
    }


def answer_json(result: Answer, compute: Compute | None = None) -> dict:
    """The answer as `rag ask --json` prints it; with `compute` (the engine's), what the
    generator ran on: {"backend", "gpu_layers_requested", "gpu_layers", "layers_offloaded", ...}."""
    out = {
        "question": result.question,
        "answer": result.text,
        "citations": [dataclasses.asdict(c) for c in result.citations],
        "passages": [hit_json(h) for h in result.hits],
        "refused": result.refused,
        "refusal_reason": (result.refusal_reason or None) if result.refused else None,
        "timings": result.timings,
        "language": result.language,
        "mode": result.mode,
        "draft": result.draft,
        "removed": result.removed,
        "tokens_per_s": result.tokens_per_s,
        "span": _span_json(result),
    }
    if compute is not None:
        out["compute"] = compute.as_json()
    return out


def _span_json(result: Answer) -> dict | None:
    """In span mode, where the answer's words are: their file and offsets (inside citation [1])."""
    where = result.span_offsets
    if where is None:
        return None
    return {"text": result.span.text, "source": where[0], "start": where[1], "end": where[2],
            "confidence": round(result.span.confidence, 4)}


def print_answer(result: Answer, streamed: str) -> None:
    """After the streamed text: the checked answer when it differs from the draft, then sources."""
    for line in answer_lines(result, streamed):
        click.echo(line)


def answer_lines(result: Answer, streamed: str) -> list[str]:
    """What `rag ask` prints after the streamed draft, as styled lines (click strips the styles
    where the output is no terminal): the warm process sends these to the command unchanged.
    The answer quotes documents and names files: all of it is shown through `safe_terminal`."""
    lines = [("\n" + click.style("checked: ", bold=True) if streamed else "") + safe_terminal(result.text, keep_newlines=True)]
    if result.removed:
        removed = " / ".join(_flat(sentence) for sentence in result.removed)
        lines.append(click.style(f"removed as unsupported by the sources: {safe_terminal(removed)}", fg="yellow"))
    if result.refused:
        lines.append(click.style("\n" + languages.pack(result.language).text("closest"), bold=True))
        for hit in result.hits[:3]:
            lines.append(safe_terminal(f"  {hit.chunk.source}, §{hit.chunk.paragraph}: {_short(hit.chunk.text)}"))
    else:
        lines.append(click.style("\nSources:", bold=True))
        for c in result.citations:
            lines.append(safe_terminal(f"[{c.n}] {where(c.source, c.paragraph, c.page, c.heading)} ({c.start}-{c.end}): "
                                       f"\"{_flat(c.quote)}\""))
    t = result.timings
    lines.append(click.style(
        f"\nretrieval {t['retrieve']:.0f} ms · first token {t['first_token']:.0f} ms · total {t['total']:.0f} ms · {result.mode}",
        dim=True))
    return lines


def print_hits(hits: list[Hit], explain: bool) -> None:
    if not hits:
        click.echo("no passage found")
    for h in hits:
        heading = safe_terminal(f"#{h.rank} {h.chunk.source}, §{h.chunk.paragraph} ({h.chunk.start}-{h.chunk.end})")
        click.echo(click.style(heading, bold=True) + f"  fused {h.score:.4f}")
        if explain:
            lex = "-" if h.lexical_rank is None else f"#{h.lexical_rank} ({h.lexical_score:.3f})"
            den = "-" if h.dense_rank is None else f"#{h.dense_rank} ({h.dense_score:.3f})"
            sub = "-" if h.subword_rank is None else f"#{h.subword_rank} ({h.subword_score:.3f})"
            click.echo(f"   lexical {lex} · sub-words {sub} · dense {den} · fused {h.score:.4f}")
        click.echo(f"   {safe_terminal(_short(h.chunk.text, 300))}")


def where(source: str, paragraph: int, page: int | None = None, heading: str | None = None) -> str:
    """"report.pdf, p. 3, §12" / "guide.docx, « Installation », §4" / "notes.txt, §2".

    >>> where("a.pdf", 12, 3)
    'a.pdf, p. 3, §12'
    """
    parts = [source]
    if page is not None:
        parts.append(f"p. {page}")
    if heading:
        parts.append(f"« {_short(heading, 60)} »")
    return ", ".join(parts + [f"§{paragraph}"])


def _flat(text: str) -> str:
    """One line: runs of whitespace, newlines included, become one space."""
    return " ".join(text.split())


def _short(text: str, limit: int = 160) -> str:
    text = _flat(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
