"""Evidence first: from the retrieved passages, pick the sentences most likely to answer the
question, each with its exact offsets in the source file. The model sees only these."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.chunking import Chunk
from rag.embedders import Embedder
from rag.lexical import LexicalIndex
from rag.retrieval import Hit
from rag.text import analyze, join_numbers, normalize, query_weights, sentence_spans, words

_QUANTITY_QUESTION = re.compile(
    r"\b(combien|quel(?:le)?s? (?:est|était|a été|sont) (?:le|la|les) (?:montant|coût|nombre|prix|valeur|budget|somme|part|pourcentage)"
    r"|how (?:many|much)|what (?:was|is|were) the (?:cost|number|price|amount|value|budget|share)|quel(?:le)?s? (?:coût|montant|nombre|somme|budget|pourcentage))",
    re.IGNORECASE,
)
# A figure, in digits or in words ("deux mois", "une douzaine d'années", "two months").
_NUMBER = re.compile(
    r"(?<![A-Za-z])\d|\b(?:deux|trois|quatre|cinq|six|sept|huit|neuf|dix|douze|vingt|trente|cent|mille|douzaine|dizaines?|"
    r"centaines?|millions?|milliards?|two|three|four|five|ten|twelve|hundreds?|thousands?|billions?)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Evidence:
    n: int  # 1-based number shown to the model and in citations
    chunk: Chunk
    start: int  # offsets of the sentence in the source file
    end: int
    text: str  # the exact sentence from the file
    score: float
    coverage: float  # share of the question's (idf-weighted) terms found in the sentence or its passage
    similarity: float  # dense cosine similarity between question and sentence (0 without embedder)

    @property
    def source(self) -> str:
        return self.chunk.source


SHORT_SENTENCE = 60  # characters


def evidence_spans(text: str) -> list[tuple[int, int]]:
    r"""Sentence spans where a very short sentence does not stand alone: an attribution line
    ('— Marc Andreessen (@pmarca) 26 janvier 2025') joins the sentence it attributes, and another
    short sentence joins the one after it in the same paragraph.

    >>> t = "Deepseek R1 est le moment Sputnik de l'IA.\n— Marc Andreessen (@pmarca) 26 janvier 2025\nSouvent qualifié de « moment Sputnik », le modèle fait des vagues."
    >>> [t[a:b] for a, b in evidence_spans(t)][0]
    "Deepseek R1 est le moment Sputnik de l'IA.\n— Marc Andreessen (@pmarca) 26 janvier 2025"
    """
    merged: list[tuple[int, int]] = []
    for a, b in sentence_spans(text):
        attribution = text[a] in "—–"
        same_paragraph = bool(merged) and "\n" not in text[merged[-1][1] : a]
        if merged and (attribution or (same_paragraph and merged[-1][1] - merged[-1][0] < SHORT_SENTENCE)):
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def answerability(evidence: list[Evidence]) -> float:
    """How well the best evidence sentence matches the question: its term coverage plus half its
    embedding similarity (the relevance parts of the evidence score, without the rank and figure
    bonuses). Below the refusal threshold the documents are taken not to hold the answer."""
    return max((e.coverage + 0.5 * e.similarity for e in evidence), default=0.0)


def has_figure(text: str) -> bool:
    """Whether the text states a quantity, in digits or in words.

    >>> has_figure("deux mois"), has_figure("2 000 GPU"), has_figure("le modèle R1")
    (True, True, False)
    """
    return bool(_NUMBER.search(text))


def asks_quantity(question: str) -> bool:
    return bool(_QUANTITY_QUESTION.search(normalize(question)))


def select_evidence(
    question: str,
    hits: list[Hit],
    lexical: LexicalIndex,
    embedder: Embedder | None,
    limit: int = 4,
    terms: dict[str, float] | None = None,
) -> list[Evidence]:
    """Score every sentence of the hits: idf-weighted term coverage, dense similarity to the
    question, a small bonus for the passage's rank, and, for 'how many/how much' questions,
    whether the sentence holds a number. `terms` are the query's weighted terms (as the retriever
    expanded them); by default the question's own."""
    candidates: list[tuple[Chunk, int, int, int]] = []  # chunk, start, end, hit rank
    for hit in hits:
        offset = hit.chunk.start
        for a, b in evidence_spans(hit.chunk.text):
            # a question asked in the document answers nothing
            if b - a >= 15 and not hit.chunk.text[a:b].rstrip(" »”\"").endswith("?"):
                candidates.append((hit.chunk, offset + a, offset + b, hit.rank))
    if not candidates:
        return []
    terms = query_weights(question) if terms is None else terms
    weights = {t: w * lexical.idf(t) for t, w in terms.items()}
    total = sum(weights.values()) or 1.0
    sentence_texts = [c[0].text[c[1] - c[0].start : c[2] - c[0].start] for c in candidates]
    passage_terms = {hit.chunk.id: set(analyze(hit.chunk.text)) for hit in hits}
    similarity = _similarities(question, sentence_texts, embedder)
    wants_number = asks_quantity(question)
    scored = []
    for (chunk, start, end, rank), text, sim in zip(candidates, sentence_texts, similarity):
        sentence_terms = set(analyze(text))
        own = sum(w for t, w in weights.items() if t in sentence_terms) / total
        around = sum(w for t, w in weights.items() if t in passage_terms[chunk.id]) / total
        coverage = 0.75 * own + 0.25 * around
        score = coverage + 0.5 * sim + 0.1 / rank  # answerability() uses the first two terms
        if wants_number:
            score += 0.15 if has_figure(text) else -0.5  # a figure is what was asked for
        scored.append((score, coverage, sim, chunk, start, end, text))
    scored.sort(key=lambda s: -s[0])
    chosen = []
    for score, coverage, sim, chunk, start, end, text in scored:
        if any(_same_sentence(text, e.text) for e in chosen):
            continue
        chosen.append(Evidence(len(chosen) + 1, chunk, start, end, text, round(score, 4), round(coverage, 4), round(sim, 4)))
        if len(chosen) == limit:
            break
    return chosen


def _similarities(question: str, texts: list[str], embedder: Embedder | None) -> list[float]:
    if embedder is None:
        return [0.0] * len(texts)
    vectors = embedder.embed([question, *texts])
    return [float(x) for x in vectors[1:] @ vectors[0]]


def _same_sentence(a: str, b: str) -> bool:
    return words(a) == words(b)


def numbers_in(text: str) -> set[str]:
    """Numbers as written one way; digits inside a name (R1, H800) are not numbers.

    >>> sorted(numbers_in("2 000 GPU H800 pour R1 et 5,5 M$"))
    ['2000', '5.5']
    """
    return set(re.findall(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?", join_numbers(normalize(text))))
