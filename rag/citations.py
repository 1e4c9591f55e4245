"""Citations the system guarantees: every answer sentence is checked against the evidence it cites.

A sentence is supported by an evidence sentence when (1) every number it states appears in that
sentence, and (2) most of its new content terms (terms not already in the question) and of all
its content terms appear in it (MIN_NEW_TERMS, MIN_ALL_TERMS). A wrong marker is
repaired when another evidence sentence supports the claim; an unsupported sentence is dropped
(and reported in `removed`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.evidence import Evidence, numbers_in
from rag import languages
from rag.text import Lang, analyze, fold, join_numbers, normalize, sentence_spans

# What a claim must share with the sentence it cites (calibrated with `rag eval`).
MIN_NEW_TERMS = 0.8  # of the terms the claim adds to the question
MIN_ALL_TERMS = 0.6  # of all its terms

_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")


@dataclass(frozen=True)
class Citation:
    n: int
    source: str
    paragraph: int
    start: int
    end: int
    quote: str  # == the indexed text of `source` at [start:end]
    page: int | None = None  # physical page of a PDF
    heading: str | None = None  # the section the quote is in, where the document has headings


@dataclass(frozen=True)
class CheckedSentence:
    text: str  # without markers
    cites: tuple[int, ...]  # evidence numbers that support it
    repaired: bool  # the model's own markers were wrong or missing


def support(sentence: str, evidence: Evidence, question: str) -> float:
    """0 when the evidence sentence does not back the claim, else the share of its terms found.

    >>> from rag.chunking import Chunk
    >>> c = Chunk("x", "a.txt", 0, 40, 1, "R1 a coûté 6 millions de dollars.")
    >>> e = Evidence(1, c, 0, 33, c.text, 1.0, 1.0, 1.0)
    >>> support("R1 a coûté 6 millions de dollars", e, "Combien a coûté R1 ?") > 0
    True
    >>> support("R1 a coûté 9 millions de dollars", e, "Combien a coûté R1 ?")
    0.0
    >>> support("R1 a coûté 6 millions d'euros", e, "Combien a coûté R1 ?")
    0.0
    >>> c = Chunk("x", "a.txt", 0, 60, 1, "Il pourrait dépenser entre 500 millions et 1 milliard par an.")
    >>> e = Evidence(1, c, 0, 60, c.text, 1.0, 1.0, 1.0)
    >>> support("Il pourrait dépenser 1 milliard par an", e, "Combien ?")
    0.0
    """
    lang = evidence.language  # a claim copies its evidence's words: both are read in its language
    stated = numbers_in(sentence, lang)
    if stated - numbers_in(evidence.text, lang):
        return 0.0  # a number the quote does not state
    if any(len(stated & set(bounds)) == 1 for bounds in ranges_in(evidence.text, lang)):
        return 0.0  # one end of a range is not what the quote says
    terms = set(analyze(sentence, lang))
    if not terms:
        return 0.0
    known = set(analyze(evidence.text, lang))
    new = terms - set(analyze(question, lang))
    if not new:
        return 0.0  # restating the question answers nothing
    share_new = len(new & known) / len(new)
    share_all = len(terms & known) / len(terms)
    if share_new < MIN_NEW_TERMS or share_all < MIN_ALL_TERMS:
        return 0.0
    return share_all


def _range_pattern(lang: Lang) -> re.Pattern:
    pack = languages.pack(lang) if isinstance(lang, str) else lang
    start, join = "|".join(pack.range_start), "|".join(pack.range_join)
    return re.compile(rf"\b(?:{start})\s+(\d+(?:\.\d+)?)\b[^.;\d]{{0,30}}?\b(?:{join})\s+(\d+(?:\.\d+)?)")


def ranges_in(text: str, lang: Lang) -> list[tuple[str, str]]:
    """Ranges stated as 'entre A et B' / 'between A and B' / 'from A to B' (the language pack's
    range words), as numbers_in() writes them.

    >>> ranges_in("entre 500 millions et 1 milliard de dollars", "fr"), ranges_in("from 1,500 to 2,000 men", "en")
    ([('500', '1')], [('1500', '2000')])
    """
    return _range_pattern(lang).findall(join_numbers(fold(text), lang))


def check(draft: str, evidence: list[Evidence], question: str) -> tuple[list[CheckedSentence], list[str]]:
    """Checked sentences of a model's draft, and the sentences removed as unsupported."""
    by_n = {e.n: e for e in evidence}
    kept: list[CheckedSentence] = []
    removed: list[str] = []
    for a, b in sentence_spans(normalize(draft)):
        raw = normalize(draft)[a:b]
        cited = [int(n) for group in _MARKER.findall(raw) for n in group.split(",")]
        text = _MARKER.sub("", raw).strip()
        if len(text) < 3:
            continue
        scores = {e.n: support(text, e, question) for e in evidence}
        good = tuple(n for n in cited if n in by_n and scores[n] > 0)
        if good:
            kept.append(CheckedSentence(text, good, repaired=False))
            continue
        best = max(scores, key=scores.get) if scores else None
        if best is not None and scores[best] > 0:
            kept.append(CheckedSentence(text, (best,), repaired=True))
        else:
            removed.append(text)
    return kept, removed


def citation_for(evidence: Evidence, n: int, document=None) -> Citation:
    """The citation of an evidence sentence; `document` (its `Document`) adds page and heading."""
    page = document.page_at(evidence.start) if document is not None else None
    heading = document.heading_at(evidence.start) if document is not None else None
    return Citation(n, evidence.source, paragraph_at(evidence.chunk, evidence.start), evidence.start, evidence.end,
                    evidence.text, page, heading)


def paragraph_at(chunk, offset: int) -> int:
    r"""Number of the paragraph (non-blank line) of the file holding `offset`, inside `chunk`.

    >>> from rag.chunking import Chunk
    >>> chunk = Chunk("x", "a.txt", 10, 30, 4, "Un.\n\nDeux.\nTrois.")
    >>> [paragraph_at(chunk, 10), paragraph_at(chunk, 15), paragraph_at(chunk, 21)]
    [4, 5, 6]
    """
    before = chunk.text[: offset - chunk.start].split("\n")[:-1]
    return chunk.paragraph + sum(1 for line in before if line.strip())
