"""Disagreeing sources: when the evidence gives different figures for the same kind of quantity
(the same thing counted: dollars, whatever the magnitude word — '42 dollars' against '5,5 millions
de dollars' —, percentages, 'GPU H800'...), show each one with its own citation instead of
silently picking one."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rag.evidence import Evidence
from rag import languages
from rag.text import Lang, fold, join_numbers, normalize, pack_of


@lru_cache(maxsize=None)
def _figure_pattern(lang: str) -> re.Pattern:
    """A figure and what it counts, by the language pack's words: a percentage, an amount of
    money (a magnitude word before the currency is part of the amount: "5,5 millions de dollars",
    "$5.5 million"), or a thing counted: the word after the number, with a model code after it
    ("2 000 GPU H800")."""
    p = languages.pack(lang)
    magnitude = "|".join(sorted(map(re.escape, p.magnitudes), key=len, reverse=True))
    currency = "|".join(sorted(map(re.escape, p.currencies), key=len, reverse=True))
    of = "|".join(re.escape(w) + (r"\s+" if w[-1].isalpha() else "") for w in p.of_words)
    return re.compile(
        r"(?P<before>[$€£]\s?)?(?<![\w.,])(?P<number>\d{1,3}(?:[ .,]\d{3})+|\d+(?:[.,]\d+)?)\s*"
        rf"(?P<unit>%|(?:(?P<magnitude>{magnitude})\s+(?:{of})?)?(?:{currency}|[$€£])\b|"
        rf"(?P<scale>{magnitude})\b|(?P<thing>[^\W\d_][\w-]{{1,}}(?:\s+[^\W\d_]+\d+)?))?",
        re.IGNORECASE,
    )


@dataclass(frozen=True)
class Figure:
    value: str  # as written in the source, e.g. '5,5 millions de dollars'
    number: float  # on one scale: 5,5 millions de dollars -> 5500000.0
    unit: str  # what is counted, folded: 'dollars', '%', 'gpu h800'
    evidence: Evidence
    magnitude: str = ""  # the magnitude word as written, folded: 'millions', 'milliard', ''

    @property
    def written_unit(self) -> str:
        """'millions dollars': the unit with its magnitude word, as the text puts it."""
        return f"{self.magnitude} {self.unit}".strip()


def parse_figures(text: str, lang: Lang) -> list[tuple[str, float, str, str]]:
    """(as written, value on one scale, unit, magnitude word) of the figures of a text that carry a unit.

    >>> parse_figures("R1 a coûté 5,5 millions de dollars, pas 42 dollars ni $6 million.", "fr")
    [('5,5 millions de dollars', 5500000.0, 'dollars', 'millions'), ('42 dollars', 42.0, 'dollars', ''), ('$6 million', 6000000.0, 'dollars', 'million')]
    >>> parse_figures("un four de 3 millions d'euros", "fr")
    [("3 millions d'euros", 3000000.0, 'euros', 'millions')]
    >>> parse_figures("avec 2 000 GPU H800, en baisse de 17 %", "fr")
    [('2 000 GPU H800', 2000.0, 'gpu h800', ''), ('17 %', 17.0, '%', '')]
    >>> parse_figures("about 2,400 settlers", "en")
    [('2,400 settlers', 2400.0, 'settlers', '')]
    """
    p = pack_of(lang)
    symbols = {"$": "dollars", "€": "euros", "£": "pounds"}
    found = []
    for m in _figure_pattern(p.code).finditer(normalize(text)):
        unit_text = fold(m.group("unit") or "")
        currency = symbols.get((m.group("before") or "").strip())
        # "$6 million": the currency before the number, the magnitude word alone after it
        word = fold(m.group("magnitude") or m.group("scale") or "")
        magnitude = p.magnitudes.get(word, 1.0)
        if m.group("thing"):
            first = unit_text.split()[0]
            if first in p.stopwords or first in p.magnitudes or first in p.time_units or first in p.calendar:
                continue  # "1754 the war", "3 ans": no thing counted
            unit = " ".join(unit_text.split())
        elif unit_text == "%":
            unit = "%"
        else:
            last = re.split(r"[\s']+", unit_text)[-1]  # "millions d'euros" -> "euros"
            unit = p.currencies.get(last) or symbols.get(last) or currency or ""  # a bare "6 millions" counts nothing known
        if not unit:
            continue
        try:
            number = float(join_numbers(m.group("number"), p).replace(" ", "")) * magnitude
        except ValueError:
            continue
        found.append((m.group(0).strip(), number, unit, word))
    return found


def figures(evidence: Evidence) -> list[Figure]:
    return [Figure(value, number, unit, evidence, word)
            for value, number, unit, word in parse_figures(evidence.text, evidence.language)]


def relevant_units(question: str, units: set[str], lang: Lang) -> set[str]:
    """Units the question is about: those whose words it uses, and money if it asks about money
    (the pack's money words).

    >>> sorted(relevant_units("Combien a coûté R1 ?", {"dollars", "gpu h800"}, "fr"))
    ['dollars']
    >>> sorted(relevant_units("Combien de GPU H800 ?", {"dollars", "gpu h800"}, "fr"))
    ['gpu h800']
    """
    p = pack_of(lang)
    asked = set(fold(question).replace("-", " ").replace("'", " ").split())
    money = bool(asked & p.money_words)
    money_units = {unit for other in languages.packs() for unit in other.currencies.values()}
    return {u for u in units if set(u.split()) & asked - p.stopwords or (money and u in money_units)}


def conflicting_figures(question: str, answer: str, evidence: list[Evidence], lang: Lang,
                        min_coverage_ratio: float = 0.35, same_subject_ratio: float = 0.8) -> list[Figure]:
    """Figures of a unit that the question asks about and the answer states, when relevant
    evidence sentences from at least two files give at least two different values for it.

    Figures written with the same magnitude word ('6 millions de dollars', '5,5 millions de
    dollars') are compared across every sentence that matches the question reasonably
    (`min_coverage_ratio` of the best coverage). Figures of other magnitudes ('42 dollars' against
    '5,5 millions de dollars') are compared only between sentences that match the question about
    as well as the best one (`same_subject_ratio`): a training cost in millions and a market loss
    in billions, found in sentences that match the question less well, are not the same quantity."""
    if not evidence:
        return []
    stated = {unit for _, _, unit, _ in parse_figures(answer, lang)}
    best = max(e.coverage for e in evidence)
    # A figure the question itself gives ("the budget of unit 517") is what is asked about, not an answer.
    given = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", join_numbers(normalize(question), lang).replace(" ", ""))}
    groups: dict[tuple[str, str], list[Figure]] = {}
    for e in evidence:
        for figure in figures(e):
            if figure.number in given:
                continue
            if e.coverage >= min_coverage_ratio * best:
                groups.setdefault(("written", figure.written_unit), []).append(figure)
            if e.coverage >= same_subject_ratio * best:
                groups.setdefault(("scaled", figure.unit), []).append(figure)
    wanted = relevant_units(question, {f.unit for group in groups.values() for f in group}, lang) & stated
    conflicts = []
    for group in groups.values():
        if group[0].unit not in wanted:
            continue
        values = {round(f.number, 6) for f in group}
        sources = {f.evidence.source for f in group}
        if len(values) >= 2 and len(sources) >= 2:
            conflicts.append(group)
    if not conflicts:
        return []
    # the group the top evidence talks about wins; of two, the one with more figures
    conflicts.sort(key=lambda g: (min(f.evidence.n for f in g), -len(g)))
    seen: set[float] = set()
    distinct = []
    for figure in sorted(conflicts[0], key=lambda f: f.evidence.n):
        if round(figure.number, 6) not in seen:
            seen.add(round(figure.number, 6))
            distinct.append(figure)
    return distinct
