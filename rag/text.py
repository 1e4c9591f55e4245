"""Text handling shared by indexing, retrieval, evidence selection and evaluation, by language pack shared by indexing, retrieval, evidence selection and evaluation.

Offsets always point into the text as stored in the file; `normalize()` only produces derived
views (what is embedded, tokenised, shown to the model), so a quote is always exact.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Union

from rag import languages
from rag.languages import LanguagePack

# Non-breaking, narrow and thin spaces used by French typography, mapped to a plain space.
_SPACES = dict.fromkeys(map(ord, "\u00a0\u202f\u2009\u2007\u2008\u200a\u3000"), " ")
_APOSTROPHES = dict.fromkeys(map(ord, "\u2019\u2018\u02bc\u00b4`"), "'")
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?(?:'[a-z]+)?")
_DIGIT = re.compile(r"[0-9]")  # tokens are ASCII

Lang = Union[str, LanguagePack]


def pack_of(lang: Lang) -> LanguagePack:
    return lang if isinstance(lang, LanguagePack) else languages.pack(lang)


def normalize(text: str) -> str:
    """NFC, plain spaces and straight apostrophes: 'l\u2019IA\u00a0!' -> "l'IA !"."""
    return unicodedata.normalize("NFC", text).translate(_SPACES).translate(_APOSTROPHES)


class _Unmarked(dict):
    """A `str.translate` table that drops combining marks (accents once decomposed) and keeps
    every other character; filled as characters are met."""

    def __missing__(self, code: int) -> int | None:
        kept = None if unicodedata.combining(chr(code)) else code
        self[code] = kept
        return kept


_UNMARKED = _Unmarked()


@lru_cache(maxsize=1 << 13)
def fold(text: str) -> str:
    """Lower case without accents: 'Entraîné à Pékin' -> 'entraine a pekin'.

    Cached: evidence selection folds the same sentences many times per question.

    >>> fold("Entraîné à Pékin"), fold("L’IA n`est pas"), fold("ﬁn Ångström")
    ('entraine a pekin', "l'ia n'est pas", 'ﬁn angstrom')
    """
    if text.isascii():  # nothing to decompose; of the apostrophes only the backtick is ASCII
        return text.lower().replace("`", "'")
    return unicodedata.normalize("NFD", normalize(text).lower()).translate(_UNMARKED)


@lru_cache(maxsize=None)
def _number_patterns(lang: str) -> tuple[re.Pattern, re.Pattern | None]:
    """The language's thousands groups ("2 000", "2,400") and its decimal separator when not '.'."""
    p = languages.pack(lang)
    separators = "".join(re.escape(s) for s in p.thousands_separators)
    thousands = re.compile(rf"(?<![\d.,])(\d{{1,3}})((?:[{separators}]\d{{3}})+)(?![\d]|[.,]\d)")
    decimal = None if p.decimal_separator == "." else re.compile(rf"(?<=\d){re.escape(p.decimal_separator)}(?=\d)")
    return thousands, decimal


def join_numbers(text: str, lang: Lang) -> str:
    """Write numbers one way, by the language's conventions.

    >>> join_numbers("2 000 et 5,5", "fr"), join_numbers("2,400 and 5.5", "en")
    ('2000 et 5.5', '2400 and 5.5')
    """
    thousands, decimal = _number_patterns(pack_of(lang).code)
    text = thousands.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), text)
    return decimal.sub(".", text) if decimal else text


@lru_cache(maxsize=None)
def _elision(lang: str) -> re.Pattern | None:
    elisions = languages.pack(lang).elisions
    return re.compile(r"\b(?:" + "|".join(map(re.escape, elisions)) + r")'") if elisions else None


def words(text: str, lang: Lang) -> list[str]:
    """Folded word tokens with elisions and possessives removed and numbers kept whole.

    >>> words("L’entraînement a coûté 5,5 millions avec 2 000 GPU H800", "fr")
    ['entrainement', 'a', 'coute', '5.5', 'millions', 'avec', '2000', 'gpu', 'h800']
    >>> words("Acme's CEO shouldn't pay 2,400 dollars", "en")
    ['acme', 'ceo', "shouldn't", 'pay', '2400', 'dollars']
    >>> words("in the 1950's, the 1950s", "en")  # a decade, however written
    ['in', 'the', '1950s', 'the', '1950s']
    >>> words("plus de80 millions, du 9 juin au 30 septembre 2021les restaurants, un A380 et 2 B747", "fr")
    ['plus', 'de', '80', 'millions', 'du', '9', 'juin', 'au', '30', 'septembre', '2021', 'les', 'restaurants', 'un', 'a380', 'et', '2', 'b747']

    A number glued to a stop word ("de80", "2021les": text that lost its spaces) is two words; one
    glued to other letters ("A380", "mp3", "2nd") is one.
    """
    return list(_words(text, pack_of(lang)))


@lru_cache(maxsize=1 << 11)  # evidence selection reads the same sentences many times per question
def _words(text: str, p: LanguagePack) -> tuple[str, ...]:
    folded = fold(text)
    if p.inversion is not None:  # "poussent-elles", "a-t-il": the verb, without its inverted subject
        folded = p.inversion.sub(" ", folded)
    elision = _elision(p.code)
    if elision is not None:
        folded = elision.sub(" ", folded)
    tokens = _TOKEN.findall(join_numbers(folded, p))
    out = []
    for token in tokens:
        if "'" in token:
            stem, ending = token.split("'", 1)
            if stem.isdigit() and ending == "s":
                token = stem + ending  # "the 1950's": the decade, as "the 1950s" writes it
            else:
                token = stem if ending in p.contractions or not stem.isalpha() else token
        glued = _GLUED_NUMBER.fullmatch(token)
        if glued and (glued.group(1) or glued.group(4)) in p.stopwords:
            out.extend(part for part in glued.groups() if part)  # "de80", "2021les": a lost space
            continue
        out.append(token)
    return tuple(out)


_GLUED_NUMBER = re.compile(r"([a-z]{2,})([0-9]+)|([0-9]+)([a-z]{2,})")  # a word of letters and a number


def stopwords(lang: Lang) -> frozenset[str]:
    return pack_of(lang).stopwords


def analyze(text: str, lang: Lang, also_stop: frozenset[str] = frozenset()) -> list[str]:
    """Index terms: folded words without stop words, stemmed with the language's Snowball
    stemmer; tokens holding a digit ('h800', 'r1', '2000') are kept as they are.

    >>> analyze("Combien de GPU H800 DeepSeek a-t-il utilisés ?", "fr")
    ['gpu', 'h800', 'deepseek', 'utilis']
    >>> analyze("How many colonies were founded?", "en")
    ['coloni', 'found']
    """
    return list(_analyze(text, pack_of(lang), also_stop))


@lru_cache(maxsize=1 << 11)  # as `_words`
def _analyze(text: str, p: LanguagePack, also_stop: frozenset[str]) -> tuple[str, ...]:
    stop = p.stopwords | also_stop if also_stop else p.stopwords
    kept = [t for t in _words(text, p) if t.isdigit() or (len(t) > 1 and t not in stop)]
    written = _accented(text) if p.stem_accented and not text.isascii() else {}
    out = []
    for t in kept:
        if _DIGIT.search(t):
            out.append(t)
        elif (lemma := p.lemma(written.get(t, t))) == t or fold(lemma) not in stop:
            out.append(_stem(lemma, p))
    return tuple(out)


def _stem(word: str, p: LanguagePack) -> str:
    """The stem of a word as written (lower case, accents kept), folded: 'opposèrent' -> 'oppos'.

    >>> from rag.languages import pack
    >>> _stem("opposèrent", pack("fr")), _stem("opposerent", pack("fr")), _stem("fidèles", pack("fr"))
    ('oppos', 'opposerent', 'fidel')
    """
    return p.stem(word) if word.isascii() else fold(p.stem(word))


_LETTERS = re.compile(r"[^\W\d_]+")


def _accented(text: str) -> dict[str, str]:
    """The text's words that carry accents, lower case, by their folded form (the first met)."""
    found: dict[str, str] = {}
    for run in _LETTERS.findall(normalize(text).lower()):
        if not run.isascii():
            found.setdefault(fold(run), run)
    return found


def query_weights(question: str, lang: Lang, boost: float = 2.0, also_stop: frozenset[str] = frozenset()) -> dict[str, float]:
    """Terms of a question with a weight: numbers, model names and capitalised names count more
    than ordinary words, because they are what pins an answer down.

    >>> query_weights("Combien de GPU H800 DeepSeek a-t-il utilisés ?", "fr")
    {'gpu': 2.0, 'h800': 2.0, 'deepseek': 2.0, 'utilis': 1.0}
    """
    return {term: boost if term in strong else 1.0
            for strong in [strong_terms(question, lang, also_stop)] for term in analyze(question, lang, also_stop)}


def strong_terms(question: str, lang: Lang, also_stop: frozenset[str] = frozenset()) -> set[str]:
    """Analysed terms of the question's numbers and capitalised or upper-case names, past its
    first word (which is capitalised anyway).

    >>> sorted(strong_terms("Who led the Huguenots to Cuba in 1724?", "en"))
    ['1724', 'cuba', 'huguenot']
    >>> sorted(strong_terms("Which birds visit the Station-de-Biologie-des-Laurentides?", "en"))
    ['biologi', 'laurentid', 'station']
    """
    p = pack_of(lang)
    strong: set[str] = set()
    for position, raw in enumerate(re.findall(r"[\w’'.,-]+", join_numbers(normalize(question), p))):
        raw = raw.strip(".,")
        if re.fullmatch(r"\d+'s", raw):
            word = raw  # a decade: "the 1950's"
        else:
            word = raw.split("'")[-1] if raw.split("'")[-1] not in p.contractions else raw.split("'")[0]
        # the first word is capitalised anyway: it is a name only when written like one (DeepSeek, NATO)
        named = word[:1].isupper() and len(word) > 1 and (position > 0 or any(c.isupper() for c in word[1:]))
        if any(c.isdigit() for c in word) or named or (word.isupper() and len(word) > 1):
            # (the particles of a name written with hyphens are no detail of their own:
            # "Station-de-Biologie-des-Laurentides" is held by a French text that drops "de")
            strong.update(t for t in analyze(word, p, also_stop) if t not in p.name_particles)
    return strong


def detect_language(text: str, default: str = "fr") -> str:
    """The code of the language pack the text reads as ('fr', 'en'); `default` (the corpus's
    language) when nothing tells, or when no pack covers the text's language."""
    return languages.detect(text, default) or default


# A sentence ends at a full stop, question or exclamation mark followed by a space and a capital
# (or a digit, a quote, a dash), or at line breaks. Text that lost its spaces (scraped web pages:
# "vos fichiers.Si une durée", "par le Préfet.L'autorisation", "ce pass sanitaire ?Les participants")
# also ends one where a lower-case word's stop touches a capitalised word: a stop inside a name or
# an initial ("J.K.", "ASP.NET", "U.S.Army") has a capital before it.
_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"»”)]?\s+(?=[\"«“(\[]?\s*[A-ZÀ-ÖØ-Þ0-9«“\"—–-])|\n+"
                           r"|(?:(?<=[a-zß-öø-ÿ]{2}[.!?])|(?<=[a-zß-öø-ÿ] [?!]))(?=[A-ZÀ-ÖØ-Þ](?:[a-zß-öø-ÿ]|['’][A-Za-zÀ-ÿ]))")
_WORD_BEFORE_PERIOD = re.compile(r"([^\s(«“\"]+)\.$")
# Evidence is quoted by the sentence, so it also ends one where the stop that touches a capitalised
# word follows a closing bracket or quote, a digit or an acronym ("pour Paris).Le dossier", "le 25
# mai 2018.Si elles", "un PIA.Un guide"), or touches a one-letter word ("dans un délai de 10
# jours.A noter"): a scraped FAQ glues them by the hundred. (Passages are cut at the sentence
# ends above: their bounds, so retrieval, do not change.)
_GLUED_END = re.compile(r"(?:(?<=[A-ZÀ-ÖØ-Þ]{2}[.!?])|(?<=[\d)\]\"»”][.!?]))(?=[A-ZÀ-ÖØ-Þ](?:[a-zß-öø-ÿ]|['’][A-Za-zÀ-ÿ]))"
                        r"|(?<=[a-zß-öø-ÿ\d)\]\"»”A-ZÀ-ÖØ-Þ]{2}[.!?])(?=[A-ZÀ-ÖØ-Þ]\s[a-zß-öø-ÿ])")


@lru_cache(maxsize=1)
def _abbreviations() -> frozenset[str]:
    """Every pack's abbreviations: a quote in another language keeps its 'Dr.' whole too."""
    return frozenset(a for p in languages.packs() for a in p.abbreviations)


def _not_an_end(text: str, match: re.Match) -> bool:
    """A period after an abbreviation or an initial ('Dr. Martin', 'John F. Kennedy'), or a single
    line break inside a sentence (hard-wrapped text: the line does not end a sentence and the next
    one starts in lower case), is no sentence end."""
    cut = match.group()
    if "\n" in cut:
        before = text[: match.start()].rstrip()
        after = text[match.end() : match.end() + 1]
        return cut.count("\n") == 1 and bool(before) and before[-1] not in ".!?…:;»\"”)" and after.islower()
    word = _WORD_BEFORE_PERIOD.search(text, max(0, match.start() - 24), match.start())
    if word is None:
        return False
    token = word.group(1).split("-")[-1]  # "Trinity-St. Paul's"
    return token.lower() in _abbreviations() or (len(token) == 1 and token.isupper())


def sentence_spans(text: str, start: int = 0, end: int | None = None, glued: bool = False) -> list[tuple[int, int]]:
    """Sentence boundaries inside text[start:end], as offsets into `text`, whitespace trimmed;
    `glued`: also where scraped text lost the space after a stop (`_GLUED_END`).

    >>> s = "Il a coûté 6 M$. Nvidia a chuté.\\nFin"
    >>> [s[a:b] for a, b in sentence_spans(s)]
    ['Il a coûté 6 M$.', 'Nvidia a chuté.', 'Fin']
    >>> s = "Dr. Martin met John F. Kennedy at St. Lawrence. The war\\nended in 1763."
    >>> [s[a:b] for a, b in sentence_spans(s)]
    ['Dr. Martin met John F. Kennedy at St. Lawrence.', 'The war\\nended in 1763.']
    >>> s = "Oui.Vous ne pouvez pas les garder.Si un texte le dit, voir Trinity-St. Paul's."
    >>> [s[a:b] for a, b in sentence_spans(s)]
    ['Oui.', 'Vous ne pouvez pas les garder.', "Si un texte le dit, voir Trinity-St. Paul's."]
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    ends = list(_SENTENCE_END.finditer(text, start, end))
    if glued:
        ends = sorted(ends + list(_GLUED_END.finditer(text, start, end)), key=lambda m: m.start())
    for match in ends:
        if _not_an_end(text, match):
            continue
        spans.append((cursor, match.start()))
        cursor = match.end()
    spans.append((cursor, end))
    trimmed = []
    for a, b in spans:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if b > a:
            trimmed.append((a, b))
    return trimmed


def normalize_answer(text: str, lang: Lang | None = None) -> str:
    """Comparable form of an answer for evaluation: folded, elisions and punctuation dropped,
    numbers written one way (by `lang`'s conventions; by default the text's own language).
    '5,5 millions de dollars' and '5.5 Millions de Dollars' match."""
    return " ".join(words(text, lang or detect_language(text)))
