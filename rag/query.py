"""A question is analysed once into a `Query`: its language, weighted terms, the kind of answer
it asks for and the details that pin the answer down. Retrieval, evidence selection, the answer
policy and the checks all read this value instead of re-analysing the raw string."""

from __future__ import annotations

from dataclasses import dataclass

from rag import answer_type, languages
from rag.answer_type import AnswerType
from rag.languages import LanguagePack
from rag.text import query_weights, strong_terms


@dataclass(frozen=True)
class Query:
    text: str
    language: str  # the language it is asked in (the corpus's when no pack covers it)
    supported: bool  # False: no pack covers the question's language
    weights: dict[str, float]  # analysed terms with their weight, by the pack of `terms_language`
    kind: AnswerType | None  # the kind of answer asked for, None when any sentence may answer
    strong: frozenset[str]  # analysed terms of its names and numbers: the details it asks about
    negated: bool  # it asks about what did not happen ("When did X not occur?")
    terms_language: str = ""  # the pack its terms are analysed with: its own where the corpus has
    # documents in its language, else the corpus's (names and numbers then match the index's terms)

    @property
    def pack(self) -> LanguagePack:
        return languages.pack(self.language)


def analyse(question: str, corpus_language: str = "fr", corpus_languages: tuple[str, ...] = ()) -> Query:
    """The question's `Query`. Its language is the pack whose words it uses, the corpus's when
    nothing tells. Its terms are analysed as the index analyses documents in its language; a
    question in a language none of the documents are in is analysed as the corpus's language
    (without its own stop words), so its names and numbers still match.

    >>> q = analyse("How many Huguenots fled to Cuba?", "en")
    >>> q.language, q.kind.kind, sorted(q.strong), q.negated
    ('en', 'count', ['cuba', 'huguenot'], False)
    >>> analyse("Quand la colonisation n'a-t-elle pas eu lieu ?").negated
    True
    >>> analyse("Сколько стоит?", "en").supported
    False
    """
    detected = languages.detect(question, corpus_language)
    language = detected or corpus_language
    pack = languages.pack(language)
    negated = pack.negates(question)
    if language == corpus_language or language in corpus_languages:
        terms_pack, also_stop = pack, frozenset()
    else:
        terms_pack, also_stop = languages.pack(corpus_language), pack.stopwords
    return Query(question, language, detected is not None, query_weights(question, terms_pack, also_stop=also_stop),
                 answer_type.expected(question, pack), frozenset(strong_terms(question, terms_pack, also_stop)), negated,
                 terms_pack.code)
