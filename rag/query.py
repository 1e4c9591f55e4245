"""A question is analysed once into a `Query`: its language, weighted terms, the kind of answer
it asks for and the details that pin the answer down. Retrieval, evidence selection, the answer
policy and the checks all read this value instead of re-analysing the raw string."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rag import answer_type, languages
from rag.answer_type import AnswerType
from rag.bridge import question_words
from rag.languages import LanguagePack
from rag.text import analyze, fold, normalize, query_weights, strong_terms, words


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


NAME_SHARE = 0.8  # of a word's occurrences inside sentences that are capitalised, for the word to be a name
_TEXT_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_SENTENCE_END = re.compile(r"(?:^|[.!?:;»\n]|[.!?]\s*[»”\"])\s*$")


def with_corpus_names(query: Query, texts: list[str], boost: float = 2.0) -> Query:
    """A question typed without capitals ("la france a assiégé montpellier en quelle année") names
    things all the same: its words that the passages found for it (`texts`) write as names, with
    a capital inside their sentences, become its details (`strong`), weighted as names are. A
    question with capitals past its first letter has said which words are names; it is unchanged.
    (A sentence's first word is capitalised anyway: it tells nothing.)

    >>> q = analyse("la france a assiégé montpellier en quelle année", "fr")
    >>> sorted(with_corpus_names(q, ["La France assiégea la ville de Montpellier en 1622."]).strong)
    ['franc', 'montpelli']
    >>> sorted(with_corpus_names(q, ["Montpellier fut assiégée. Le roi de France prit la ville."]).strong)
    ['franc']
    """
    if any(c.isupper() for c in normalize(query.text)[1:]):
        return query
    wanted = {}
    for word, term in question_words(query.text, query.terms_language):
        if term in query.weights and term not in query.strong and len(word) >= 3:
            wanted.setdefault(fold(word), term)
    if not wanted:
        return query
    capitalised: dict[str, int] = {}
    seen: dict[str, int] = {}
    for text in texts:
        for match in _TEXT_WORD.finditer(text):
            key = fold(match.group())
            if key not in wanted or _SENTENCE_END.search(text[max(0, match.start() - 3) : match.start()]):
                continue  # (a sentence's first word is capitalised anyway)
            seen[key] = seen.get(key, 0) + 1
            capitalised[key] = capitalised.get(key, 0) + match.group()[0].isupper()
    names = {wanted[k] for k, n in seen.items() if capitalised.get(k, 0) >= NAME_SHARE * n}
    if not names:
        return query
    weights = {t: max(w, boost) if t in names else w for t, w in query.weights.items()}
    return replace(query, weights=weights, strong=query.strong | names)


def frame_terms(query: Query) -> frozenset[str]:
    """Terms that only say what kind of answer is asked for: the question-kind phrase ("combien de
    temps", "what year") and the word for the kind of thing asked ("Quelle revue...")."""
    plain = " ".join(re.findall(r"[a-z0-9][a-z0-9'-]*", fold(query.text)))
    for pattern in query.pack.kinds.values():
        match = pattern.search(plain)
        if match:
            return category_terms(query) | frozenset(analyze(match.group(0), query.terms_language))
    return category_terms(query)


def category_terms(query: Query) -> frozenset[str]:
    """Terms of the question that name what kind of thing is asked for ("Quelle revue…", "Which
    company…", "What kind of lens…", "Quelle est la longueur…"): the documents name the thing
    itself ("long de 312 mètres"), often without the word for its kind."""
    pack = languages.pack(query.language)
    # the measure asked for, when the question asks for one ("Quelle est la longueur…"; not the
    # "area" of "What area in modern-day Canada…")
    measure = query.kind.measure if query.kind is not None else ""
    asked_measures = {w for w in pack.measures[measure][0] if " " not in w} if measure in pack.measures else set()
    nouns = pack.person_nouns | pack.named_things | pack.sort_words | asked_measures
    found = {w for w in words(query.text, pack) if w in nouns or w.rstrip("s") in nouns}
    return frozenset(t for w in found for t in analyze(w, query.terms_language))
