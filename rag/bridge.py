"""A bridge between languages for lexical search: a question in English over French documents
shares few words with them. The multilingual embedder maps each question word that the corpus
never uses to the corpus words closest in meaning ('cost' -> 'coût', 'billion' -> 'milliards'),
which then join the BM25 query with a weight scaled by their similarity.

The corpus vocabulary (one surface word per stem, the most frequent stems first) is embedded at
index time and stored with the index."""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass

import numpy as np

from rag.text import Lang, analyze, fold, normalize, pack_of

_WORD = re.compile(r"[^\W\d_][\w-]*")


@dataclass
class Bridge:
    terms: list[str]  # analysed terms, as BM25 knows them
    surfaces: list[str]  # a word of the corpus for each term, as it is embedded
    vectors: np.ndarray  # (n, dim), unit length

    def expand(self, word: str, vector: np.ndarray, min_similarity: float, per_word: int = 2) -> dict[str, float]:
        """Corpus terms close in meaning to `word` (whose embedding is `vector`), with their similarity."""
        if not self.terms:
            return {}
        similarity = self.vectors @ vector
        best = np.argsort(-similarity)[:per_word]
        return {self.terms[i]: float(similarity[i]) for i in best if similarity[i] >= min_similarity}


def vocabulary(texts: list[str], languages: list[str], limit: int = 10_000) -> list[tuple[str, str]]:
    """(term, surface word) pairs of the corpus, most frequent first, one surface word per term;
    each text is analysed with its own language's pack.

    >>> vocabulary(["Le coût du coût, les coûts"], ["fr"])
    [('cout', 'coût')]
    """
    counts: collections.Counter[str] = collections.Counter()
    surface: dict[str, collections.Counter[str]] = {}
    for text, language in zip(texts, languages):
        pack = pack_of(language)
        for raw in _WORD.findall(normalize(text).lower()):
            word = raw.split("'")[-1]
            if len(word) < 3 or fold(word) in pack.stopwords:
                continue
            terms = analyze(word, pack)
            if len(terms) != 1:
                continue
            counts[terms[0]] += 1
            surface.setdefault(terms[0], collections.Counter())[word] += 1
    return [(t, surface[t].most_common(1)[0][0]) for t, _ in counts.most_common(limit)]


def _content_words(question: str, lang: Lang) -> list[tuple[str, list[str]]]:
    """(word as written, its analysed terms) of each word of the question, an elided article cut off."""
    return [(word, analyze(word, lang)) for word in (raw.split("'")[-1] for raw in _WORD.findall(normalize(question)))]


def question_words(question: str, lang: Lang) -> list[tuple[str, str]]:
    """(word, term) of the question's content words without digits: the ones worth translating,
    as the question writes them: the embedder reads 'Brésil' as Brazil, 'brésil' as nothing
    it knows (its closest English word scores 0.86 against 0.65).

    >>> question_words("Qui a colonisé le Brésil ?", "fr")
    [('colonisé', 'colonis'), ('Brésil', 'bresil')]
    """
    return [(word, terms[0]) for word, terms in _content_words(question, lang)
            if len(terms) == 1 and not any(c.isdigit() for c in word)]


def compound_words(question: str, lang: Lang) -> list[tuple[str, list[str]]]:
    """(word, its terms) of the question's hyphenated words of several terms, as written: a name
    translated whole ('Grande-Bretagne' is 'Britain', neither 'great' nor 'Brittany').

    >>> compound_words("Quel territoire a été cédé à la Grande-Bretagne ?", "fr")
    [('Grande-Bretagne', ['grand', 'bretagn'])]
    """
    return [(word, terms) for word, terms in _content_words(question, lang) if "-" in word and len(terms) > 1]
