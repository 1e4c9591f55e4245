r"""What kind of answer a question asks for, and whether a sentence holds one.

A sentence that shares the question's words but holds nothing of the asked kind does not answer
it: 'En quelle année DeepSeek est-il entré en Bourse ?' is not answered by a sentence on Nvidia's
market value, which has no year; 'Combien d'utilisateurs ?' is not answered by '2 000 GPU'.
Evidence selection, the refusal decision and the check of the model's sentences all use this.

Kinds: "figure" (combien, how many/much, quel montant...), "count" (a figure of the counted
thing: 'combien de GPU' wants '2 000 GPU'), "duration" (combien de temps, how long), "year"
(quelle année, what year), "date" (quand, when), "time" (à quelle heure, what time: a time of day), "person" (qui, who, quel investisseur...),
"name" (quelle entreprise, which app...) and "place" (où, where: best a name, 'Cuba', but any sentence
may answer, 'through his writing', so it ranks sentences and never refuses one).
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rag import languages
from rag.languages import LanguagePack
from rag.text import Lang, analyze, fold, normalize, pack_of, words

_DATE_STAMP = re.compile(r"\b\d{4}-\d{2}(?:-\d{2})?\b")  # "date 2025-01": metadata, not a figure
# A year: 4 digits from 1000 to 2099, not part of a longer number ("1754"); or 3 digits after one
# of the language's year words ("in 732", "en 732")
_YEAR = re.compile(r"(?<![\d.,-])(1\d{3}|20\d\d)(?![\d-]|[.,]\d)")
# A span of years written with a hyphen, "(1754-1763)" (with an en dash, "1754–1763", each is a year
# already); not a date stamp ("2024-05") nor a number such as "1-800-829-3676"
_YEAR_SPAN = re.compile(r"(?<![\d.,-])(1\d{3}|20\d\d)-(1\d{3}|20\d\d)(?![\d-]|[.,]\d)")
_SHORT_YEAR = re.compile(r"(?<![\d.,-])([1-9]\d{2})(?![\d-]|[.,]\d)")
_ORDINAL = re.compile(r"\b\d{1,2}(?:st|nd|rd|th|e|eme|er|ieme)\b")  # "18th", "XVIIIe" is not caught
# a name may follow an elided article: "d'Augsbourg", "l'Angleterre"
_NAME = re.compile(r"(?<![\w@])[A-ZÀ-Ý][^\W\d_]*[a-zà-ÿ][^\W\d_]*|(?<![\w@])[A-Z]{3,}\b")  # an acronym of 3+ letters (IBM, NATO): "AI", "US" are mostly not answers
_NEAR = 3  # words between a figure and the counted thing
_TABLE_CELL = " | "  # between the cells of a table row, as rag.ingest writes tables


@dataclass(frozen=True)
class AnswerType:
    kind: str
    counted: tuple[str, ...] = ()  # the counted thing's words, folded ('gpu',), for kind "count"
    measure: str = ""  # for kind "figure": the pack's measure asked for ("length"), whose units the figure
    # needs; for kind "duration", the measure its words may ask for instead of a time ("how long")


def expected(question: str, lang: Lang) -> AnswerType | None:
    """The kind of answer the question asks for (by the patterns of its language pack), or None
    when any sentence may answer it.

    >>> expected("Combien de GPU H800 DeepSeek a-t-il utilisés ?", "fr")
    AnswerType(kind='count', counted=('gpu', 'h800'), measure='')
    >>> expected("Depuis combien d'années existe-t-elle ?", "fr").kind
    'duration'
    >>> expected("Combien a coûté l'entraînement de R1 ?", "fr").kind, expected("How long did it take?", "en").kind
    ('figure', 'duration')
    >>> expected("Qui est le PDG de Y Combinator ?", "fr").kind, expected("En quelle année est paru le livre ?", "fr").kind
    ('person', 'year')
    >>> expected("Quel ancien CEO d'Intel a salué R1 ?", "fr").kind, expected("Which venture capitalist said it?", "en").kind
    ('person', 'person')
    >>> expected("How many original colonies were there?", "en")
    AnswerType(kind='count', counted=('original', 'colonies'), measure='')
    >>> expected("Quel poste Yann LeCun occupe-t-il ?", "fr") is None
    True
    """
    p = pack_of(lang)
    folded = _plain(question)
    for kind, pattern in p.kinds.items():
        match = pattern.search(folded)
        if not match:
            continue
        if kind == "count":
            counted = tuple(w for w in match.group(1).split() if w not in p.stopwords)[:2]
            if counted and counted[0] in p.person_nouns | {n + "s" for n in p.person_nouns}:
                continue  # "how many people": people are counted under many names (settlers, soldiers)
            if counted:
                return AnswerType("count", counted)
            continue
        if kind == "figure":  # the measure the kind's own words ask for ("quelle distance", "how tall"), not
            return AnswerType(kind, measure=_measure(match.group(0), p))  # a word after them ("flight-height")
        if kind == "duration":  # "how long" asks for a time or a length
            return AnswerType(kind, measure=p.duration_measures.get(match.group(0), ""))
        return AnswerType("person" if kind == "person_by_role" else kind)
    return None


def _measure(folded: str, p: LanguagePack) -> str:
    """The pack's measure that words asking for a figure ask for ("quelle distance", "how tall"), or "".

    >>> from rag.languages import pack
    >>> _measure("quelle distance", pack("fr")), _measure("what error rate", pack("en"))
    ('length', '')
    """
    for name, (asked, _) in p.measures.items():
        if any(re.search(rf"\b{re.escape(a)}\b", folded) for a in asked):
            return name
    return ""


def fits(answer_type: AnswerType | None, sentence: str, question: str, lang: Lang) -> bool:
    """Whether the sentence holds an answer of the expected kind: `strength()` above 0."""
    return strength(answer_type, sentence, question, lang) > 0


WEAK = 0.5  # a "who" answered by a single name or a role, not a full name


def strength(answer_type: AnswerType | None, sentence: str, question: str, lang: Lang) -> float:
    """How well the sentence (in language `lang`) holds an answer of the expected kind that the
    question does not already state: 1, WEAK for a "who" answered by a single name or a role
    (a person is best named in full), 0 for none.

    >>> t = expected("Combien de GPU H800 DeepSeek a-t-il utilisés ?", "fr")
    >>> fits(t, "Il a été réalisé avec seulement 2 000 GPU H800.", "", "fr"), fits(t, "Il a coûté 6 millions.", "", "fr")
    (True, False)
    >>> fits(expected("Qui a fondé OpenAI ?", "fr"), "Ce modèle R1 surpasse celui d'OpenAI.", "Qui a fondé OpenAI ?", "fr")
    False
    >>> fits(expected("Who is the CEO of Acme?", "en"), "The current chief executive officer is Brandt.", "Who is the CEO of Acme?", "en")
    True
    >>> fits(expected("When was the fort built?", "en"), "It was built in the 18th century.", "", "en")
    True
    >>> fits(expected("Quand le fort a-t-il été bâti ?", "fr"), "Il a été bâti il y a 300 ans.", "", "fr")
    True
    >>> fits(expected("Combien de temps sont-ils conservés ?", "fr"), "Ils sont conservés un an.", "", "fr")
    True
    >>> fits(expected("How long has the city been engaged in it?", "en"), "The city has been engaged in it since 2001.", "", "en")
    True
    >>> t = expected("How long must passwords be?", "en")
    >>> fits(t, "Passwords must be at least 14 characters long.", "", "en"), fits(t, "Report it within 24 hours.", "", "en")
    (True, True)
    >>> fits(expected("When do core hours start?", "en"), "Core hours run from 10:00 to 15:00.", "", "en")
    True
    >>> t = expected("Combien de nouvelles unités seront construites ?", "fr")
    >>> fits(t, "Nombre estimé de nouvelles unités qui seront construites sur la période des travaux | 891", "", "fr")
    True
    """
    if answer_type is None:
        return 1.0
    p = pack_of(lang)
    asked = _asked(question, p)
    tokens = words(_DATE_STAMP.sub(" ", sentence), p)
    if answer_type.kind == "time":  # a time of day the question does not give ("à 16h00")
        return float(_clock_time(sentence, question, p))
    if answer_type.kind == "year":
        return float(any(y not in asked for y in _years(sentence, p)))
    if answer_type.kind == "date":
        return float(any(y not in asked for y in _years(sentence, p))
                     or bool(p.time_ago and p.time_ago.search(fold(sentence)))
                     or any(t in p.calendar and t not in asked for t in tokens)
                     or bool(_ORDINAL.search(fold(sentence))) or _named_event(sentence, asked, p)
                or _clock_time(sentence, question, p))  # "When do core hours start?" "... from 10:00"
    if answer_type.kind == "name":
        return float(_has_name(sentence, asked, p))
    if answer_type.kind == "place":  # most often named ('Tours', 'southwestern France'), not always ('in the kitchen')
        return 1.0 if _has_name(sentence, asked, p) else WEAK
    if answer_type.kind == "person":
        if _has_name(sentence, asked, p, full=True):
            return 1.0
        named = _has_name(sentence, asked, p) or any(t in p.person_nouns and t not in asked for t in tokens)
        # or the doers of what is asked, however named ("payée par les abonnés" for "Qui paie…")
        return WEAK if named or _agents(sentence, question, p) else 0.0
    if answer_type.kind == "figure":  # (a day or a year of a date counts nothing: "le 25 mai 2018", "en 1685")
        dated = {i for i, t in enumerate(tokens) if t in p.calendar}
        units = p.measures[answer_type.measure][1] if answer_type.measure in p.measures else None
        if units is None and set(words(question, p)) & p.money_words and not currency_beside_figure(normalize(sentence)):
            units = frozenset(p.currencies) | frozenset(p.currencies.values())  # a sum asked: "£14,000", "15 euros"
        return float(any(_is_figure(t, p) and t not in asked and not {i - 1, i + 1} & dated and not _a_year(tokens, i, p)
                         and not _a_label(tokens, i, p) and (units is None or bool(units & set(tokens[i + 1 : i + 4])))
                         for i, t in enumerate(tokens)))
    wanted = p.time_units if answer_type.kind == "duration" else None
    # "how long" answered by a length ("14 characters long")
    lengths = p.measures[answer_type.measure][1] if wanted is not None and answer_type.measure in p.measures else frozenset()
    if wanted is not None and any(t in p.since_words and _YEAR.fullmatch(n) and n not in asked
                                  for t, n in zip(tokens, tokens[1:])):
        return 1.0  # "since 2001": how long, from when it began
    # a table row ("Nombre estimé de nouvelles unités ... | 891", cells joined by " | " as the
    # readers write them) names what its figures count in its label cell, however long it is
    row = tokens if _TABLE_CELL in sentence else []
    for i, token in enumerate(tokens):
        if wanted is not None and token in p.one_words and tokens[i + 1 : i + 2] and tokens[i + 1] in wanted:
            return 1.0  # "un an", "a year": one, written as the article
        if not _is_figure(token, p) or token in asked or _a_year(tokens, i, p) or _a_label(tokens, i, p):
            continue  # the question's own figure answers nothing; nor does a year ("en 1685, plusieurs
            # familles huguenotes") or a number that names ("les régiments n° 13 et n° 15")
        following = tokens[i + 1 : i + 1 + _NEAR]
        if wanted is not None and any(t in wanted for t in following) or lengths & set(tokens[i + 1 : i + 3]):
            return 1.0
        # the counted thing after the figure ("2 000 GPU"), or before it, as in a table row
        # ("unités | 891") or a label ("nombre d'unités : 891")
        around = following + tokens[max(0, i - _NEAR) : i] + row
        if wanted is None and any(_same_word(t, c, p) for t in around for c in answer_type.counted):
            return 1.0
    return 0.0


def currency_beside_figure(text: str) -> bool:
    """Whether a currency sign (any of Unicode's: $, €, £, ¥, ₹...) stands next to a digit,
    a space apart at most ('$30', '11 020 000 $', '5 €').

    >>> currency_beside_figure("¥300"), currency_beside_figure("30 $"), currency_beside_figure("$ and 3")
    (True, True, False)
    """
    for i, c in enumerate(text):
        if unicodedata.category(c) == "Sc":
            before, after = text[max(0, i - 2):i].rstrip(), text[i + 1:i + 3].lstrip()
            if (before and before[-1].isdigit()) or (after and after[0].isdigit()):
                return True
    return False


def _clock_time(sentence: str, question: str, p: LanguagePack) -> bool:
    """Whether the sentence gives a time of day ("16h00", "10:00") the question does not."""
    return p.clock is not None and any(m.group() not in fold(question) for m in p.clock.finditer(fold(sentence)))


def _a_year(tokens: list[str], i: int, p: LanguagePack) -> bool:
    """Whether token i is a year by the word before it ("en 1685", "in 1754"), not a figure.

    >>> from rag.languages import pack
    >>> [_a_year(words(t, "fr"), 1, pack("fr")) for t in ("en 1685 plusieurs familles", "vers 1700 colons", "soit 1685 familles")]
    [True, True, False]
    """
    return i > 0 and tokens[i - 1] in p.year_prefixes and bool(_YEAR.fullmatch(tokens[i]))


def _a_label(tokens: list[str], i: int, p: LanguagePack) -> bool:
    """Whether token i is a number that names, after one of the pack's `label_words` ("n° 13",
    "article 6", "page 12"), not an amount.

    >>> from rag.languages import pack
    >>> [_a_label(words(t, "fr"), 1, pack("fr")) for t in ("n° 13", "article 6", "les 13 régiments")]
    [True, True, False]
    """
    return i > 0 and tokens[i - 1] in p.label_words


def starts_with_clock(text: str, lang: Lang) -> bool:
    """Whether the text begins with a time of day (the pack's `clock`): "16h05 …", "6 : 30 a.m. …".

    >>> starts_with_clock("6 : 30 a.m. on weekdays", "en"), starts_with_clock("30 of them", "en")
    (True, False)
    """
    p = pack_of(lang)
    return p.clock is not None and p.clock.match(fold(text)) is not None


def by_agent(sentence: str, question: str, lang: Lang) -> bool:
    """Whether the sentence names someone as the doer of one of the question's words: that word,
    then one of the pack's `agent_words`, then a name the question does not hold ("conçu par
    Pierre-Paul Riquet" for "Qui a conçu le canal ?", "designed by Eiffel").

    >>> by_agent("Le projet est conçu par Pierre-Paul Riquet.", "Qui a conçu le canal ?", "fr")
    True
    >>> by_agent("Avec le canal de Garonne, il forme le canal des Deux-Mers.", "Qui a conçu le canal ?", "fr")
    False
    """
    p = pack_of(lang)
    return any(_NAME.match(agent) and fold(agent) not in _asked(question, p) for agent in _agents(sentence, question, p))


def _agents(sentence: str, question: str, p: LanguagePack) -> list[str]:
    """The words that follow one of the question's words and an agent word, past the stop words
    ('payée par les abonnés' for 'Qui paie la redevance ?': 'abonnés'); none of the question's.

    >>> _agents("La redevance est payée par les abonnés.", "Qui paie la redevance ?", pack_of("fr"))
    ['abonnés']
    """
    if not p.agent_words:
        return []
    asked_terms = set(analyze(question, p))
    found = [m.group() for m in re.finditer(r"[^\W\d_][\w'’-]*", normalize(sentence))]
    agents = []
    for i in range(len(found) - 1):
        if fold(found[i + 1]) in p.agent_words and set(analyze(found[i], p)) & asked_terms:
            rest = [w for w in found[i + 2 : i + 5] if fold(w) not in p.stopwords]
            if rest and not set(analyze(rest[0], p)) & asked_terms:
                agents.append(rest[0])
    return agents


def _named_event(sentence: str, asked: frozenset[str], p: LanguagePack) -> bool:
    """Whether the sentence dates something by a named event the question does not name: one of
    the pack's `event_words` before a name ("before World War I", "pendant la Fronde").

    >>> from rag.languages import pack
    >>> _named_event("They wrote most before World War I.", frozenset(), pack("en"))
    True
    >>> _named_event("They wrote most before the war.", frozenset(), pack("en"))
    False
    """
    if not p.event_words:
        return False
    text = normalize(sentence)
    for m in re.finditer(r"[^\W\d_]+", text):
        if fold(m.group()) in p.event_words:
            after = re.match(rf"\s+(?:(?:{'|'.join(map(re.escape, p.articles))})\s*)?({_NAME.pattern})", text[m.end():])
            if after and fold(after.group(1)) not in asked:
                return True
    return False


def years(sentence: str, lang: Lang) -> list[str]:
    """Years the sentence (in language `lang`) states."""
    return _years(sentence, pack_of(lang))


def _years(sentence: str, p: LanguagePack) -> list[str]:
    """Years the sentence states.

    >>> from rag.languages import pack
    >>> _years("Founded in 732, it lost 589 men in 1754.", pack("en"))
    ['1754', '732']
    >>> _years("La guerre de la Conquête (1754-1763), le 2024-05-01, au 1-800-829-3676.", pack("fr"))
    ['1754', '1763']
    """
    text = normalize(sentence)
    found = _YEAR.findall(text) + [y for span in _YEAR_SPAN.findall(text) for y in span]
    for m in _SHORT_YEAR.finditer(text):
        before = fold(text[max(0, m.start() - 12) : m.start()]).split()
        last = re.sub(r"^\w+['’]", "", before[-1]) if before else ""  # "l'an 732": "an"
        if before and (before[-1] in p.year_prefixes or last in p.year_prefixes):
            found.append(m.group(1))
    return found


@lru_cache(maxsize=256)
def _asked(question: str, p: LanguagePack) -> frozenset[str]:
    return frozenset(words(question, p))


def _plain(question: str) -> str:
    """Folded question, words separated by single spaces, elided articles kept ('d'utilisateurs')."""
    return " ".join(re.findall(r"[a-z0-9][a-z0-9'-]*", fold(question)))


def _has_name(sentence: str, asked: frozenset[str], p: LanguagePack, full: bool = False) -> bool:
    """Whether the sentence names someone or something the question does not: a capitalised
    word (LeCun, ChatGPT, Gloo, Brandt) or an acronym past the sentence's first word, not a
    calendar word or a function word; `full`: two such words in a row (Marc Andreessen), one of
    them new to the question.

    >>> from rag.languages import pack
    >>> _has_name("Il a devancé ChatGPT sur l'App Store.", {"app", "store"}, pack("fr"))
    True
    >>> _has_name("Le 27 janvier, l'IA.", frozenset(), pack("fr"))
    False
    >>> _has_name("Some Protestants live there.", frozenset({"protestant", "live"}), pack("en"))
    False
    >>> _has_name("Il fut élève de l'École polytechnique.", frozenset({"ecole", "etudie"}), pack("fr"))
    True
    """
    text = normalize(sentence)
    first = re.search(r"\w+", text)
    calendar = _any_calendar()  # a quote in another language keeps its months ("January 27, 2025")
    names = [m for m in _NAME.finditer(text) if fold(m.group()) not in p.stopwords and fold(m.group()) not in calendar]
    terms = {t for w in asked for t in analyze(w, p)}

    def new(name: str) -> bool:  # another form of a question's word names nothing new ("Protestants")
        return fold(name) not in asked and not (set(analyze(name, p)) or {""}) <= terms

    def named_thing(name: re.Match) -> bool:  # a kind of thing with a capital, its name after it in lower
        # case: "l'École polytechnique", "la Banque mondiale"
        after = re.match(r"\s+([a-zà-ÿ][\w-]*)", text[name.end():])
        return fold(name.group()) in p.named_things and after is not None \
            and fold(after.group(1)) not in p.stopwords and new(after.group(1))

    if full:
        return any(_in_one_name(text[a.end() : b.start()], p) and (new(a.group()) or new(b.group()))
                   for a, b in zip(names, names[1:]))
    return any(new(m.group()) or named_thing(m) for m in names if first is None or m.start() >= first.end())


def _in_one_name(gap: str, p: LanguagePack) -> bool:
    """Whether what stands between two capitalised words keeps them one name: a space, a hyphen,
    or one or two of the pack's name particles ("Osama bin Laden", "Charles le Moyne de Longueuil").

    >>> from rag.languages import pack
    >>> [_in_one_name(g, pack("en")) for g in (" ", "-", " bin ", " de la ", " and ", ", ")]
    [True, True, True, True, False, False]
    """
    if gap in (" ", "-"):
        return True
    inner = gap.split()
    return gap[:1] == " " and gap[-1:] == " " and 0 < len(inner) <= 2 and all(w in p.name_particles for w in inner)


@lru_cache(maxsize=1)
def _any_calendar() -> frozenset[str]:
    return frozenset(w for pack in languages.packs() for w in pack.calendar)


def _is_figure(token: str, p: LanguagePack) -> bool:
    return token in p.number_words or bool(re.fullmatch(r"\d+(?:\.\d+)?", token))


def _same_word(a: str, b: str, p: LanguagePack) -> bool:
    """Same word up to inflection or a close cognate: 'GPUs'/'GPU', 'scientists'/'scientifiques'."""
    a, b = a.rstrip("s"), b.rstrip("s")
    return a == b or analyze(a, p) == analyze(b, p) or len(os.path.commonprefix([a, b])) >= 7
