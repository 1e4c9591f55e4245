"""French-aware text handling shared by indexing, retrieval, evidence selection and evaluation.

Offsets always point into the text as stored in the file; `normalize()` only produces derived
views (what is embedded, tokenised, shown to the model), so a quote is always exact.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Non-breaking, narrow and thin spaces used by French typography, mapped to a plain space.
_SPACES = dict.fromkeys(map(ord, "\u00a0\u202f\u2009\u2007\u2008\u200a\u3000"), " ")
_APOSTROPHES = dict.fromkeys(map(ord, "\u2019\u2018\u02bc\u00b4`"), "'")
_ELISION = re.compile(r"\b(?:l|d|qu|j|n|s|c|m|t|jusqu|lorsqu|puisqu|quoiqu)'", re.IGNORECASE)
# "2 000", "2.000", "1 000 000" -> one number; a group of exactly three digits follows a separator.
_THOUSANDS = re.compile(r"(?<![\d.,])(\d{1,3})((?:[ .]\d{3})+)(?![\d])")
_DECIMAL_COMMA = re.compile(r"(?<=\d),(?=\d)")
_TOKEN = re.compile(r"[a-z0-9]+(?:\.[0-9]+)?")
_QUESTION_WORDS = frozenset(
    "combien quel quelle quels quelles qui quoi comment pourquoi quand lequel laquelle "
    "selon est-ce what which who whom how many much when why where does did is are was were "
    "according".split()
)


def normalize(text: str) -> str:
    """NFC, plain spaces and straight apostrophes: 'l\u2019IA\u00a0!' -> "l'IA !"."""
    return unicodedata.normalize("NFC", text).translate(_SPACES).translate(_APOSTROPHES)


def fold(text: str) -> str:
    """Lower case without accents: 'Entraîné à Pékin' -> 'entraine a pekin'."""
    decomposed = unicodedata.normalize("NFD", normalize(text).lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def join_numbers(text: str) -> str:
    """Write numbers one way: '2 000' and '2.000' -> '2000', '5,5' -> '5.5'."""
    text = _THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"[ .]", "", m.group(2)), text)
    return _DECIMAL_COMMA.sub(".", text)


def words(text: str) -> list[str]:
    """Folded word tokens with elisions removed and numbers kept whole.

    >>> words("L’entraînement a coûté 5,5 millions avec 2 000 GPU H800")
    ['entrainement', 'a', 'coute', '5.5', 'millions', 'avec', '2000', 'gpu', 'h800']
    """
    folded = join_numbers(_ELISION.sub(" ", fold(text)))
    return _TOKEN.findall(folded)


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

    return frozenset(fold(w) for w in (*STOPWORDS_FRENCH, *STOPWORDS_EN)) | _QUESTION_WORDS


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("french")


def analyze(text: str) -> list[str]:
    """Index terms: folded words without stop words, Snowball-French stemmed; tokens holding a
    digit ('h800', 'r1', '2000') are kept as they are.

    >>> analyze("Combien de GPU H800 DeepSeek a-t-il utilisés ?")
    ['gpu', 'h800', 'deepseek', 'utilis']
    """
    stop = _stopwords()
    stem = _stemmer().stemWord
    kept = [t for t in words(text) if t.isdigit() or (len(t) > 1 and t not in stop)]
    return [t if any(c.isdigit() for c in t) else stem(t) for t in kept]


def query_weights(question: str, boost: float = 2.0) -> dict[str, float]:
    """Terms of a question with a weight: numbers, model names and capitalised names count more
    than ordinary words, because they are what pins an answer down.

    >>> query_weights("Combien de GPU H800 DeepSeek a-t-il utilisés ?")
    {'gpu': 2.0, 'h800': 2.0, 'deepseek': 2.0, 'utilis': 1.0}
    """
    strong = set()
    for raw in re.findall(r"[\w’'.,-]+", join_numbers(normalize(question))):
        raw = raw.strip(".,")
        word = raw.split("'")[-1]
        if any(c.isdigit() for c in word) or (word[:1].isupper() and len(word) > 1) or (word.isupper() and len(word) > 1):
            strong.update(analyze(word))
    weights: dict[str, float] = {}
    for term in analyze(question):
        weights[term] = boost if term in strong else 1.0
    return weights


def detect_language(text: str) -> str:
    """'fr' or 'en', by which language's function words the text uses more."""
    from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_FRENCH

    tokens = words(text)
    fr = sum(t in _FR_MARKERS or t in STOPWORDS_FRENCH for t in tokens)
    en = sum(t in _EN_MARKERS or t in STOPWORDS_EN for t in tokens)
    return "en" if en > fr else "fr"


_FR_MARKERS = frozenset("combien quel quelle quels quelles qui comment pourquoi quand est a-t-il".split())
_EN_MARKERS = frozenset("what which who how many much when why where does did the of".split())

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"»”)]?\s+(?=[\"«“(\[]?\s*[A-ZÀ-ÖØ-Þ0-9«“\"—–-])|\n+")


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence boundaries inside text[start:end], as offsets into `text`, whitespace trimmed.

    >>> s = "Il a coûté 6 M$. Nvidia a chuté.\\nFin"
    >>> [s[a:b] for a, b in sentence_spans(s)]
    ['Il a coûté 6 M$.', 'Nvidia a chuté.', 'Fin']
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _SENTENCE_END.finditer(text, start, end):
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


def normalize_answer(text: str) -> str:
    """Comparable form of an answer for evaluation: folded, elisions and punctuation dropped,
    numbers written one way. '5,5 millions de dollars' and '5.5 Millions de Dollars' match."""
    return " ".join(words(text))
