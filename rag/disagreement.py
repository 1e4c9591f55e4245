"""Disagreeing sources: when the evidence gives different figures for the same kind of quantity
(the same unit: 'millions de dollars', 'milliards de dollars', 'GPU H800'...), show each one with
its own citation instead of silently picking one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rag.evidence import Evidence
from rag.text import fold, join_numbers, normalize

_FIGURE = re.compile(
    r"(?<![\w.,])(\d{1,3}(?:[ .]\d{3})+|\d+(?:[.,]\d+)?)\s*"
    r"(%|(?:millions?|milliards?|mille)\s+(?:de\s+|d')?(?:dollars|euros|yuans)|[$€]|dollars|euros|"
    r"(?:gpu|puces)(?:\s+(?:nvidia\s+)?[a-z]\d+)?)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Figure:
    value: str  # as written in the source, e.g. '5,5 millions de dollars'
    number: str  # normalised, e.g. '5.5'
    unit: str  # folded, e.g. 'millions de dollars'
    evidence: Evidence


def figures(evidence: Evidence) -> list[Figure]:
    text = normalize(evidence.text)
    found = []
    for m in _FIGURE.finditer(text):
        found.append(Figure(m.group(0).strip(), join_numbers(m.group(1)).replace(" ", ""), _unit(m.group(2)), evidence))
    return found


def _unit(raw: str) -> str:
    """'GPU Nvidia H800' -> 'gpu h800', 'Millions de dollars' -> 'millions de dollars'."""
    return " ".join(fold(raw).replace("nvidia ", "").split())


# Words that make a question about money, so money units are the quantity it asks about.
_MONEY_WORDS = frozenset(
    "cout coute couter couts budget prix depense depenser depenses investi investir investissement "
    "investissements valeur capitalisation perte perdu baisse chute amputee montant somme "
    "cost costs spend spent spending price budget invest investment value loss lose lost worth".split()
)
_MONEY_UNIT = re.compile(r"dollars|euros|yuans|[$€]")


def relevant_units(question: str, units: set[str]) -> set[str]:
    """Units the question is about: those whose words it uses, and money if it asks about money.

    >>> sorted(relevant_units("Combien a coûté R1 ?", {"millions de dollars", "gpu h800"}))
    ['millions de dollars']
    >>> sorted(relevant_units("Combien de GPU H800 ?", {"millions de dollars", "gpu h800"}))
    ['gpu h800']
    """
    asked = set(fold(question).replace("-", " ").replace("'", " ").split())
    money = bool(asked & _MONEY_WORDS)
    return {u for u in units if set(u.split()) & asked - {"de", "d"} or (money and _MONEY_UNIT.search(u))}


def conflicting_figures(question: str, answer: str, evidence: list[Evidence],
                        min_coverage_ratio: float = 0.35) -> list[Figure]:
    """Figures of a unit that the question asks about and the answer states, when relevant
    evidence sentences from at least two files give at least two different values for it."""
    if not evidence:
        return []
    stated = {_unit(m.group(2)) for m in _FIGURE.finditer(normalize(answer))}
    best = max(e.coverage for e in evidence)
    relevant = [e for e in evidence if e.coverage >= min_coverage_ratio * best]
    by_unit: dict[str, list[Figure]] = {}
    for e in relevant:
        for figure in figures(e):
            by_unit.setdefault(figure.unit, []).append(figure)
    conflicts = []
    wanted = relevant_units(question, set(by_unit)) & stated
    for unit, group in by_unit.items():
        if unit not in wanted:
            continue
        values = {f.number for f in group}
        sources = {f.evidence.source for f in group}
        if len(values) >= 2 and len(sources) >= 2:
            conflicts.append(group)
    if not conflicts:
        return []
    # the unit the top evidence talks about wins
    conflicts.sort(key=lambda g: min(f.evidence.n for f in g))
    seen: set[str] = set()
    distinct = []
    for figure in conflicts[0]:
        if figure.number not in seen:
            seen.add(figure.number)
            distinct.append(figure)
    return distinct
