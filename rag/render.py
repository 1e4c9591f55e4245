"""Turning answers and hits into JSON objects and terminal text."""

from __future__ import annotations

import dataclasses

import click

from rag.pipeline import Answer
from rag.retrieval import Hit


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


def answer_json(result: Answer) -> dict:
    return {
        "question": result.question,
        "answer": result.text,
        "citations": [dataclasses.asdict(c) for c in result.citations],
        "passages": [hit_json(h) for h in result.hits],
        "refused": result.refused,
        "timings": result.timings,
        "language": result.language,
        "mode": result.mode,
        "draft": result.draft,
        "removed": result.removed,
        "tokens_per_s": result.tokens_per_s,
    }


def print_answer(result: Answer, streamed: str) -> None:
    """After the streamed text: the checked answer when it differs from the draft, then sources."""
    click.echo(("\n" + click.style("checked: ", bold=True) if streamed else "") + result.text)
    if result.removed:
        click.echo(click.style(f"removed as unsupported by the sources: {' / '.join(result.removed)}", fg="yellow"))
    if result.refused:
        click.echo(click.style("\nClosest passages:" if result.language == "en" else "\nPassages les plus proches :", bold=True))
        for hit in result.hits[:3]:
            click.echo(f"  {hit.chunk.source}, §{hit.chunk.paragraph}: {_short(hit.chunk.text)}")
    else:
        click.echo(click.style("\nSources:", bold=True))
        for c in result.citations:
            click.echo(f"[{c.n}] {where(c.source, c.paragraph, c.page, c.heading)} ({c.start}-{c.end}): "
                       f"\"{' '.join(c.quote.split())}\"")
    t = result.timings
    click.echo(click.style(
        f"\nretrieval {t['retrieve']:.0f} ms · first token {t['first_token']:.0f} ms · total {t['total']:.0f} ms · {result.mode}",
        dim=True))


def print_hits(hits: list[Hit], explain: bool) -> None:
    if not hits:
        click.echo("no passage found")
    for h in hits:
        click.echo(click.style(f"#{h.rank} {h.chunk.source}, §{h.chunk.paragraph} ({h.chunk.start}-{h.chunk.end})", bold=True)
                   + f"  fused {h.score:.4f}")
        if explain:
            lex = "-" if h.lexical_rank is None else f"#{h.lexical_rank} ({h.lexical_score:.3f})"
            den = "-" if h.dense_rank is None else f"#{h.dense_rank} ({h.dense_score:.3f})"
            click.echo(f"   lexical {lex} · dense {den} · fused {h.score:.4f}")
        click.echo(f"   {_short(h.chunk.text, 300)}")


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


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
