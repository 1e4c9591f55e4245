"""The answer policy: whether the documents answer the question, decided before any generation.

Signals, each measured on four corpora (`benchmarks/refusal_study.py`: the seeds, English
Wikipedia with unanswerable questions written to look answerable, real PDF/Word/HTML files, the
French CNIL FAQ with unanswerable questions of our own):

- **answerability** of the best evidence sentence that holds an answer of the asked kind: its
  coverage of the question's idf-weighted terms plus half its embedding similarity (the best
  single signal on every set);
- **a negation the evidence lacks**: "When did the colonization of India *not* occur?" is not
  answered by the sentence saying when it occurred (a third of SQuAD's unanswerable questions). The
  negation must bear on what the question negates: one of the negated terms within NEGATED_REACH
  words of a negation of the sentence (`negates_what_is_asked`), so "These dates do not correspond
  with ... the capture of X" does not answer "When was X not captured?". Measured on four sets
  (--no-llm): 2 more unanswerable questions refused (squad2-en, cnil-fr), 1 answerable one lost
  (squad2-en, whose sentence says "is an error" and had passed on an unrelated "not just because");
  the same at a reach of 2 to 8 words;
- **what the corpus never speaks of**: when a large share of the question's idf weight is in
  words no document uses, even through the cross-language bridge ("Quel est le nombre de
  paramètres du modèle R1 ?" over articles that never mention parameters), the documents do not
  hold the answer, however well the other words match;
- **the detail asked about, missing where the answer is**: a question that reuses a real sentence
  with one detail changed ("How many Huguenots lived in Amsterdam in *1705*?" over "In 1628 the
  Huguenots of New Amsterdam...") matches most of its words. Its details (names and numbers) must
  be in the answering sentence or the sentences beside it (`evidence.unfound_details`); the idf
  share of those that are not is taken off the score, `DETAIL_WEIGHT` times;
- **a price with no sum of money**: a question asking what something costs is not answered by
  evidence that states no amount ("How much will it cost Berlin to rename the streets?" over a
  sentence with only a year): never a figure with a citation where the documents hold none;
- **the opposite of what is asked**: a question that reuses a sentence with one word turned into
  its opposite ("Where was there a *strength* in the British supply chain?" over "Scouts had
  reported the *weakness* of the British supply chain") is not answered by it (`opposite`): the
  sentence lacks the question's word, holds an antonym of it (the pack's `antonyms`, from WordNet
  for English) and shares a word beside it with the question;
- **a complement changed**: a question that reuses a sentence with the complement of one of its
  nouns changed ("le refus des *notifications push*" over "le refus des *cookies*"; "le procès en
  *réhabilitation*" over "son procès pour *hérésie*") is not answered by it when neither it nor the
  sentences beside it hold the question's word or one close to it in meaning
  (`evidence.changed_complements`);
- **another number for the same thing**: a question that counts with a written number ("the
  town's *eight* stone bridges") is not answered by a sentence that counts the same thing with
  another one ("its seven stone bridges") and never with the question's (`other_number`;
  a figure in digits is a detail the answer must hold anyway).

A rule that fires sets the score to 0, so the one threshold (`Settings.refusal_threshold`) and
`rag eval`'s sweep over it see every refusal the same way."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from rag import languages
from rag.disagreement import parse_figures
from rag.answer_type import currency_beside_figure
from rag.evidence import Evidence, best_answering, relevance, term_idf
from rag.lexical import LexicalIndex
from rag.query import Query, frame_terms
from rag.retrieval import QueryTerms
from rag.text import analyze, fold, normalize, words

MAX_UNKNOWN_SHARE = 0.5  # of the question's idf weight in words the corpus never uses (0.4: as many unanswerable
# questions caught on 4 sets, 3x the answerable ones lost on English Wikipedia)
DETAIL_WEIGHT = 0.6  # score taken off per unit of idf share in details the answer's neighbourhood lacks:
# 0.5 to 0.75 refuse the same unanswerable questions on the 4 sets and no correct answer; 0.9 and more
# refuse correct answers (realdocs, English Wikipedia)


@dataclass(frozen=True)
class Decision:
    score: float  # answerability, or 0 when a rule says the documents do not answer
    reason: str  # "" (answer), "weak-match", "negation", "unknown-terms", "unknown-name", "no-evidence", "no-amount",
    # "other-number", "opposite", "changed-complement", or
    # "missing-detail" (the score lost some of its weight for a detail the answer lacks)

    def refuse(self, threshold: float) -> bool:
        return self.score < threshold


def decide(query: Query, evidence: list[Evidence], terms: QueryTerms, lexical: LexicalIndex,
           corpus_languages: int = 1) -> Decision:
    """The policy's score and, when a rule fires, why. `corpus_languages`: how many languages
    the documents are written in."""
    if not evidence:
        return Decision(0.0, "no-evidence")
    # (a word of a question in another language than the documents is expected to be unknown; in
    # a corpus of several languages, a common word may be known only to the documents of the
    # other one, as 'against' for 'contre', and the bridge finds few such translations: names it
    # finds, 'Brazil' for 'Brésil')
    if query.language == query.terms_language and unknown_names(query, terms, lexical):
        return Decision(0.0, "unknown-name")
    if query.language == query.terms_language and corpus_languages == 1 and \
            unknown_share(terms, lexical, frame_terms(query)) > MAX_UNKNOWN_SHARE:
        return Decision(0.0, "unknown-terms")
    best = best_answering(evidence)
    if best is None:
        return Decision(0.0, "no-evidence")
    if query.negated and not negates_what_is_asked(query, best.text, best.language, terms):
        return Decision(0.0, "negation")
    if asks_amount(query) and not states_amount(best.text, best.language):
        return Decision(0.0, "no-amount")
    if other_number(query, best.text, best.language):
        return Decision(0.0, "other-number")
    if opposite(query, best.text, best.language):
        return Decision(0.0, "opposite")
    if best.changed:
        return Decision(0.0, "changed-complement")
    missing = detail_share(query, best, terms, lexical)
    return Decision(relevance(best) - DETAIL_WEIGHT * missing, "missing-detail" if missing else "")


NEGATED_REACH = 4  # words on either side of a negation that it bears on


def _negations(text: str, lang: str) -> list[tuple[str, str, str]]:
    """Each negation of the text (the pack's `negation`, on folded text): the words before it,
    the negation itself, the words after it."""
    folded = fold(text)
    return [(folded[: m.start()], m.group(0), folded[m.end():]) for m in languages.pack(lang).negations(folded)]


def negated_terms(query: Query) -> set[str]:
    """The terms a negated question negates: those inside its negation ("ne recommande-t-elle
    pas"), the first two after it ("not repaired") and the last before it ("the bridge not";
    French typed without "ne", "si Loudoun avait pas validé", negates what Loudoun did).

    >>> from rag.query import analyse
    >>> sorted(negated_terms(analyse("When was the bridge not repaired by the city?", "en")))
    ['bridg', 'citi', 'repair']
    >>> sorted(negated_terms(analyse("Quelle durée la CNIL ne recommande-t-elle pas ?", "fr")))
    ['cnil', 'recommand']
    >>> sorted(negated_terms(analyse("Who isn't able to sign?", "en")))
    ['abl', 'sign']
    """
    lang = query.terms_language
    negation_words = query.pack.negation
    terms: set[str] = set()
    for before, negation, after in _negations(query.text, query.language):
        terms.update(t for t in analyze(negation, lang) if not negation_words.search(t))  # "n't" is no term
        terms.update(analyze(after, lang)[:2])
        terms.update(analyze(before, lang)[-1:])
    return terms


def negates_what_is_asked(query: Query, text: str, lang: str, terms: QueryTerms | None = None) -> bool:
    """Whether the text negates what the negated question negates: one of its negated terms
    within NEGATED_REACH words of a negation of the text ("The dates do not match those of the war,
    when the bridge was repaired" does not answer "When was the bridge not repaired?"). A text in
    another language than the question's terms is compared through their translations (`terms`'
    stand-ins: "qui n'avait pas le droit de s'installer" is not answered by "the kingdom did not
    recover"). Where they cannot be compared (no translation, nothing negated), any negation of
    the text counts.

    >>> from rag.query import analyse
    >>> q = analyse("When was the old bridge not repaired?", "en")
    >>> [negates_what_is_asked(q, t, "en") for t in ("The dates do not match those of the war, when the old bridge was repaired.",
    ...                                              "The old bridge was never repaired.")]
    [False, True]
    """
    asked = negated_terms(query)
    if asked and lang != query.terms_language:  # its words as they are (names) or translated
        translated = {s for t in asked for s in (terms.stand_ins.get(t, {}) if terms else ())}
        asked = asked | translated if translated else set()
    if not asked:
        return languages.pack(lang).negates(text)
    for before, negation, after in _negations(text, lang):
        near = " ".join(before.split()[-NEGATED_REACH:] + [negation] + after.split()[:NEGATED_REACH])
        if asked & set(analyze(near, lang)):
            return True
    return False


_NAMING_NUMBER = re.compile(r"(?<=[^\W\d_]\s)([A-Z][a-z]+)\s+[A-Z]")  # "...the Seven Years' War"


def counted(text: str, lang: str, names: frozenset[str] = frozenset()) -> list[tuple[float, frozenset[str], bool]]:
    """Each number of the text that counts something, in digits or written alone ("seven", not
    "seven hundred"), with the terms of the two words after it and whether it is written.

    A written number that begins a name ("the Seven Years' War"), or one of `names` (folded words
    known to be names: "la guerre de sept ans" typed in lower case), counts nothing.

    >>> [(v, sorted(a), w) for v, a, w in counted("Its seven stone bridges, 2 mills and two hundred houses", "en")]
    [(7, ['bridg', 'stone'], True), (2.0, ['mill'], False)]
    >>> counted("The Seven Years' War ended.", "en")
    []
    """
    p = languages.pack(lang)
    tokens = words(text, p)
    naming = {fold(m.group(1)) for m in _NAMING_NUMBER.finditer(normalize(text))} | names
    found = []
    for i, token in enumerate(tokens):
        value = float(token) if re.fullmatch(r"\d+(?:\.\d+)?", token) else p.number_values.get(token)
        beside = tokens[i - 1 : i] + tokens[i + 1 : i + 2]
        if value is None or token in naming or any(w in p.number_words or w in p.magnitudes for w in beside):
            continue
        after = frozenset(t for w in tokens[i + 1 : i + 3] for t in analyze(w, p))
        if after:
            found.append((value, after, token in p.number_values))
    return found


def ranked(text: str, lang: str) -> list[tuple[int, frozenset[str]]]:
    """Each ordinal word of the text (the pack's `ordinals`) with the terms of the two words before
    and after it: what it ranks ("third in command"; in French after the noun, "commandant en second").

    >>> [(v, sorted(a)) for v, a in ranked("He was second in command, and the third bridge fell.", "en")]
    [(2, ['command']), (3, ['bridg', 'fell'])]
    >>> [(v, sorted(a)) for v, a in ranked("Abercrombie fut nommé commandant en second.", "fr")]
    [(2, ['command'])]
    """
    p = languages.pack(lang)
    tokens = words(text, p)
    return [(p.ordinals[token], frozenset(t for w in tokens[max(0, i - 2) : i] + tokens[i + 1 : i + 3] for t in analyze(w, p)))
            for i, token in enumerate(tokens) if token in p.ordinals]


def other_number(query: Query, text: str, lang: str) -> bool:
    """Whether the text counts what the question counts with a written number ("eight stone
    bridges"), but with another number ("seven stone bridges"), and never gives the question's;
    or ranks what the question ranks with another ordinal ("third in command" asked, "second in
    command" said). (A question's figure in digits is a detail it must hold anyway:
    `evidence.unfound_details`.)

    >>> from rag.query import analyse
    >>> q = analyse("Who built the town's eight bridges?", "en")
    >>> [other_number(q, t, "en") for t in ("Its seven bridges were built by monks.",
    ...                                     "Its 8 bridges were built by monks.", "The bridges were built by monks.")]
    [True, False, False]
    >>> q = analyse("Who was appointed third in command in 1756?", "en")
    >>> [other_number(q, t, "en") for t in ("In 1756 Abercrombie was his second in command.",
    ...                                     "In 1756 Abercrombie was his second in command, and Webb his third.")]
    [True, False]
    """
    named = frozenset(w for w in words(query.text, query.language) if set(analyze(w, query.language)) & query.strong)
    asked = [(value, after) for value, after, written in counted(query.text, query.language, named) if written]
    if asked and _another(asked, [(value, after) for value, after, _ in counted(text, lang)]):
        return True
    ranks = ranked(query.text, query.language)
    return bool(ranks) and _another(ranks, ranked(text, lang))


def _another(asked: list[tuple[float, frozenset[str]]], given: list[tuple[float, frozenset[str]]]) -> bool:
    """Whether the text gives, for something the question numbers, only other numbers: a number
    of the text followed by one of the terms after the question's, and the question's nowhere."""
    values = {value for value, _ in given}
    return any(value not in values and any(after & other for _, other in given) for value, after in asked)


OPPOSITE_REACH = 2  # content words on either side of a word that must be shared with the question


@lru_cache(maxsize=None)
def _opposites(lang: str) -> dict[str, frozenset[str]]:
    """The pack's antonyms as analysed terms: term -> the terms of its antonyms and their
    irregular forms ('win' -> 'lose', 'lost')."""
    found: dict[str, set[str]] = {}
    for word, antonym, forms in languages.pack(lang).antonyms:
        for term in analyze(word, lang):
            for other in (antonym, *forms):
                found.setdefault(term, set()).update(t for t in analyze(other, lang) if t != term)
    return {term: frozenset(others) for term, others in found.items()}


def prepare(codes: tuple[str, ...] | list[str]) -> None:
    """Read the word tables of these languages now (the English antonyms take about 0.2 s), so the
    first question does not wait for them."""
    for code in codes:
        if code in languages.codes():
            _opposites(code)


def _term_sequence(text: str, lang: str) -> list[str]:
    """The text's analysed terms in their order (stop words dropped)."""
    return [t for w in words(text, lang) for t in analyze(w, lang)]


def _beside(sequence: list[str], i: int) -> set[str]:
    return set(sequence[max(0, i - OPPOSITE_REACH) : i]) | set(sequence[i + 1 : i + 1 + OPPOSITE_REACH])


def opposite(query: Query, text: str, lang: str) -> bool:
    """Whether the text says the opposite of a word of the question in the same place: it lacks
    the question's word, holds one of its antonyms that the question does not, and that antonym
    has, within OPPOSITE_REACH content words, a term that is as near the question's word. A
    language whose pack has no antonyms, or a question in another language than the text, is
    never refused by this rule.

    >>> from rag.query import analyse
    >>> q = analyse("Where was there a strength in the British supply chain?", "en")
    >>> [opposite(q, t, "en") for t in ("Scouts reported the weakness of the British supply chain.",
    ...                                 "Its strength and weakness: the British supply chain.",
    ...                                 "The British supply chain ran by the lakes; its weakness was known.")]
    [True, False, False]
    """
    if lang != query.terms_language:
        return False
    opposites = _opposites(lang)
    if not opposites:
        return False
    asked = _term_sequence(query.text, lang)
    said = _term_sequence(text, lang)
    asked_terms, said_terms = set(asked), set(said)
    for i, term in enumerate(asked):
        if term in said_terms:
            continue
        for other in opposites.get(term, ()):
            if other in said_terms and other not in asked_terms:
                near = _beside(asked, i)
                if any(t == other and near & _beside(said, j) for j, t in enumerate(said)):
                    return True
    return False


def asks_amount(query: Query) -> bool:
    """Whether the question asks for a sum of money: a figure, with one of its language's money
    words ("Combien coûte...", "How much will it cost...")."""
    return query.kind is not None and query.kind.kind == "figure" and \
        bool(set(words(query.text, query.pack)) & query.pack.money_words)


def states_amount(text: str, lang: str) -> bool:
    """Whether the text states a sum of money: a figure with a currency ('5 308 $', '$30',
    '5,5 millions de dollars').

    >>> states_amount("Le coût est de 11 020 000 $", "fr"), states_amount("avant le 30 septembre 2021", "fr")
    (True, False)
    """
    if currency_beside_figure(normalize(text)):
        return True
    currencies = set(languages.pack(lang).currencies.values())
    return any(unit in currencies for _, _, unit, _ in parse_figures(text, lang))


def detail_share(query: Query, best: Evidence, terms: QueryTerms, lexical: LexicalIndex) -> float:
    """Share of the question's idf weight in details (names, numbers) that the answering sentence
    and its neighbours lack but the corpus holds elsewhere (a word no document uses is the
    unknown-terms rule's, and may be a typo: 'Shirey' for 'Shirley'), the words that only say what
    is asked for left out."""
    vocabulary = lexical.vocabulary
    elsewhere = [t for t in best.unfound
                 if terms.known(t, vocabulary)]
    if not elsewhere:
        return 0.0
    ignore = frame_terms(query)
    weights = {t: w * term_idf(t, terms, lexical) for t, w in terms.weights.items() if t not in ignore}
    total = sum(weights.values())
    return sum(weights.get(t, 0.0) for t in elsewhere) / total if total > 0 else 0.0


NAME_LETTERS = 4  # a shorter name may be an initial or a short form ('Lor' for 'Lord'): no rule of its own


def unknown_names(query: Query, terms: QueryTerms, lexical: LexicalIndex) -> list[str]:
    """The question's names (`query.strong`, in letters, at least NAME_LETTERS) that no document
    writes, in any form: not the term, no stand-in of it, no word starting like it ('Canadian' for
    'Canada'), no word one letter away; and its numbers that no document holds (`_unknown_numbers`).
    Documents that never name what the question is about do not answer it, however well the rest of it matches ('the EU-Canada Privacy Shield' over a FAQ
    on the EU-US one). The word for the kind of thing asked is no such name."""
    vocabulary = lexical.vocabulary
    frame = frame_terms(query)
    numbers = _unknown_numbers(query, terms, vocabulary)
    unknown = [t for t in sorted(query.strong)
               if t.isalpha() and len(t) >= NAME_LETTERS and t in terms.weights and t not in frame
               and not terms.known(t, vocabulary)]
    if not unknown:
        return numbers
    starts = {t: t if len(t) <= 6 else t[:-2] for t in unknown}
    unknown = [t for t in unknown if not any(v.startswith(starts[t]) for v in vocabulary)]
    # nor a word one letter away, however short ('Lous XIV' for 'Louis'; the stand-ins only bridge
    # words of at least 6 letters): a typo is no other name. That word is a name's length too: a
    # shorter stem is another word's ('pai', of 'paid', is no typo of 'Paris')
    return numbers + [t for t in unknown if not process.extractOne(
        t, [v for v in vocabulary if abs(len(v) - len(t)) <= 1 and len(v) >= NAME_LETTERS],
        scorer=Levenshtein.distance, score_cutoff=1)]


@lru_cache(maxsize=1)
def _number_words() -> dict[str, int]:
    """Every pack's number words and their values ('ten' -> 10, 'soixante' -> 60), folded."""
    return {fold(w): v for code in languages.codes() for w, v in languages.pack(code).number_values.items()}


def _unknown_numbers(query: Query, terms: QueryTerms, vocabulary) -> list[str]:
    """The question's numbers of 2 to 6 digits that no document holds, in figures or as a number
    word ('65' over documents that only say 'hors de la commune'). A round thousand or more may be
    written with a word for its magnitude ('2 millions', 'three thousand'): never unknown."""
    written = _number_words()
    unknown = []
    for t in sorted(query.strong):
        if not (t.isdigit() and 2 <= len(t) <= 6) or t not in terms.weights or t in vocabulary:
            continue
        value = int(t)
        if value % 1000 == 0 or any(v == value and w in vocabulary for w, v in written.items()):
            continue
        unknown.append(t)
    return unknown


def unknown_share(terms: QueryTerms, lexical: LexicalIndex, ignore: frozenset[str] = frozenset()) -> float:
    """Share of the question's idf weight in terms the corpus never uses and no stand-in covers.
    A term of `ignore` (the words that only say what is asked for) is never an unknown one: left
    out of the count when the corpus does not use it, counted as a known term when it does
    ("combien d'ouvriers" over "12 000 ouvriers").

    A term the corpus never uses gets the highest idf, so one such word in a short question
    weighs a lot, as it should: it is the detail asked about."""
    known = {t for t in terms.weights if terms.known(t, lexical.vocabulary)}
    weights = {t: w * lexical.idf(t) for t, w in terms.weights.items() if t in known or t not in ignore}
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in weights.items() if t not in known) / total
