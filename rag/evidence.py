"""Evidence first: from the retrieved passages, pick the sentences most likely to answer the
question, each with its exact offsets in the source file. The model sees only these."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rapidfuzz.distance import Levenshtein

from rag import answer_type
from rag.bridge import question_words
from rag.chunking import Chunk
from rag.documents import Document
from rag.embedders import Embedder
from rag.lexical import SPELLING_MIN_LETTERS, LexicalIndex
from rag.query import Query, category_terms
from rag.retrieval import Hit, QueryTerms
from rag.text import Lang, analyze, fold, join_numbers, normalize, pack_of, sentence_spans, words


@dataclass(frozen=True)
class Evidence:
    n: int  # 1-based number shown to the model and in citations
    chunk: Chunk
    start: int  # offsets of the sentence in the source file
    end: int
    text: str  # the exact sentence from the file
    score: float
    coverage: float  # share of the question's (idf-weighted) terms found in the sentence, with the
    # sentence before it, and in its passage
    similarity: float  # dense cosine similarity between question and sentence (0 without embedder)
    fits: bool = True  # holds an answer of the kind asked for (a figure, a year, a name...)
    unfound: tuple[str, ...] = ()  # the question's details (analysed terms of its names and numbers)
    # that neither the sentence nor its neighbours hold: see `unfound_details()`
    changed: tuple[str, ...] = ()  # the question's complements that the sentence replaces by its
    # own: see `changed_complements()`

    @property
    def source(self) -> str:
        return self.chunk.source

    @property
    def language(self) -> str:
        return self.chunk.language


SHORT_SENTENCE = 60  # characters
PREVIOUS = 0.3  # share of a sentence's term coverage counted with the sentence before it: an answer
# often follows the sentence naming its subject ('This address later inspired...'); 0.25 to 0.35 gain
# on realdocs (and 0.3-0.35 on squad2-en) and lose nowhere, 0.45 and above loses on cnil-fr (--no-llm,
# four sets); 0.3 is the middle of that range
EMBEDDED_SENTENCES = 10  # sentences compared with the question by the embedder, the best covered first.
# Embedding every sentence of the passages (about 42) took 100 ms of the 130 ms of evidence selection;
# with 16 and with 10 every answer and policy score of the four sets stayed the same (--no-llm, seeds,
# squad2-en, realdocs, cnil-fr; measured twice, a session apart), as did the first 4 evidence sentences of
# 80 squad2-en questions (7 pools of 8 differed in their last 4). 10 instead of 16: 14 ms less a question
# (78 -> 64 ms squad2-en, 117 -> 102 ms cnil-fr, p50 of --no-llm answers in one process)
ATTRIBUTION_CHARS = 100  # an attribution line ('— Name (@handle) date') is at most this long


def evidence_spans(text: str, lang: Lang = "fr") -> list[tuple[int, int]]:
    r"""Sentence spans where a sentence that cannot stand alone joins its neighbour: an attribution
    line ('— Marc Andreessen (@pmarca) 26 janvier 2025') joins the sentence it attributes, a
    sentence opening with a pronoun ('Il souligne que...') the one naming who it is, and another
    short sentence the one after it in the same paragraph.

    >>> t = "Deepseek R1 est le moment Sputnik de l'IA.\n— Marc Andreessen (@pmarca) 26 janvier 2025\nSouvent qualifié de « moment Sputnik », le modèle fait des vagues."
    >>> [t[a:b] for a, b in evidence_spans(t)][0]
    "Deepseek R1 est le moment Sputnik de l'IA.\n— Marc Andreessen (@pmarca) 26 janvier 2025"
    >>> len(evidence_spans("Yann LeCun insiste sur l'open source. Il souligne que DeepSeek en a bénéficié.", "fr"))
    1
    >>> len(evidence_spans("Les projets retenus sont les suivants.\n\n– Le projet Gamma coûtera 8 millions."))
    2
    """
    pronouns = pack_of(lang).sentence_pronouns
    merged: list[tuple[int, int]] = []
    for a, b in sentence_spans(text, glued=True):
        gap = text[merged[-1][1] : a] if merged else ""
        # a short dash line right under a sentence; not a dash-bulleted item after a blank line (a
        # new paragraph, or a new page of a PDF: the quote would then be cited on the wrong page)
        attribution = text[a] in "—–" and b - a <= ATTRIBUTION_CHARS and "\n\n" not in gap
        same_paragraph = bool(merged) and "\n" not in gap
        short = bool(merged) and merged[-1][1] - merged[-1][0] < SHORT_SENTENCE
        if merged and (attribution or (same_paragraph and (short or _starts_with(text, a, pronouns)))):
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def _is_question(sentence: str) -> bool:
    """'Comment faire ?' is a question; 'Valable 5 ans.Comment faire ?' holds a statement first.

    >>> _is_question("Un cookie, qu'est-ce que c'est ?"), _is_question("Valable 5 ans.Comment faire ?")
    (True, False)
    """
    body = sentence.rstrip(" »”\"")
    return body.endswith("?") and not re.search(r"[.!;]", body[:-1])


def _starts_with(text: str, at: int, first_words: tuple[str, ...]) -> bool:
    match = re.match(r"[\w-]+", text[at : at + 24])
    return match is not None and match.group() in first_words


def relevance(e: Evidence) -> float:
    """How well an evidence sentence matches the question: its term coverage plus half its
    embedding similarity (the relevance parts of its score, without the rank and answer-kind
    bonuses)."""
    return e.coverage + 0.5 * e.similarity


def best_answering(evidence: list[Evidence]) -> Evidence | None:
    """The most relevant evidence sentence that holds an answer of the asked kind."""
    return max((e for e in evidence if e.fits), key=relevance, default=None)


def answerability(evidence: list[Evidence]) -> float:
    """The relevance of the best sentence holding an answer of the asked kind; below the refusal
    threshold the documents are taken not to hold the answer."""
    best = best_answering(evidence)
    return 0.0 if best is None else relevance(best)


def select_evidence(
    query: Query,
    hits: list[Hit],
    lexical: LexicalIndex,
    embedder: Embedder | None,
    limit: int = 4,
    terms: QueryTerms | None = None,
    documents: Mapping[str, Document] | None = None,
) -> list[Evidence]:
    """Score every sentence of the hits: idf-weighted term coverage, dense similarity to the
    question, a small bonus for the passage's rank, and, when the question asks for a kind of
    answer (a figure, a year, a person...), whether the sentence holds one. `terms` are the
    query's terms as the retriever expanded them; by default the question's own. `documents`
    (by name) give the title and headings a sentence stands under, where the question's details
    may be instead of beside it (`context()`)."""
    candidates: list[tuple[Chunk, int, int, int]] = []  # chunk, start, end, hit rank
    for hit in hits:
        offset = hit.chunk.start
        for a, b in evidence_spans(hit.chunk.text, hit.chunk.language):
            # a question asked in the document answers nothing (but a statement glued to a link
            # title that ends in '?', in text that lost its spaces, still may)
            if b - a >= 15 and not _is_question(hit.chunk.text[a:b]):
                candidates.append((hit.chunk, offset + a, offset + b, hit.rank))
    if not candidates:
        return []
    terms = QueryTerms(query.weights) if terms is None else terms
    # the word for the kind of thing asked ("Which organisation…") where no document uses it:
    # the documents name the thing ("the Northern Lighthouse Board"), never the word
    frame = {t for t in category_terms(query) if not terms.known(t, lexical.vocabulary)}
    weights = {t: w * term_idf(t, terms, lexical) for t, w in terms.weights.items() if t not in frame}
    total = sum(weights.values()) or 1.0
    sentence_texts = [c[0].text[c[1] - c[0].start : c[2] - c[0].start] for c in candidates]
    passage_terms = {hit.chunk.id: set(analyze(hit.chunk.text, hit.chunk.language)) for hit in hits}
    wanted = query.kind
    strong = set(query.strong)
    scored = []
    previous_terms: set[str] = set()
    previous_own: set[str] = set()  # its own words (previous_terms: with the names it leaves to those before)
    previous_chunk, previous_end = None, 0
    asked_terms: dict[str, set[str]] = {}  # the question's own terms, as each language reads them
    for (chunk, start, end, rank), text in zip(candidates, sentence_texts):
        sentence_terms = set(analyze(text, chunk.language))
        if chunk.id != previous_chunk:
            previous_terms, previous_own = set(), set()
        elif "\n\n" in chunk.text[previous_end - chunk.start : start - chunk.start]:
            previous_terms = previous_own  # a new paragraph: only the last sentence's own words
        previous_names = previous_terms & strong
        # a sentence that names none of the question's names and numbers may leave them to the
        # sentences before it in its paragraph ('Founded as a broad coalition in 1989, it was led
        # by...' after a sentence naming the FIS; 'The city's institutions were handed over...
        # Tension with Paris led to a siege in 1622' after one naming Montpellier) or to the title
        # and headings it stands under (a table row under 'Règlement 1324'): there they count as
        # its own. Its other words count only through `PREVIOUS`; and a sentence naming one of
        # them has its own subject ('In comparison, another firm used 25 000 GPUs' after the
        # sentence on the firm asked about)
        leaves_names = not (sentence_terms & strong)
        carried = sentence_terms | previous_names if leaves_names else sentence_terms
        setting: set[str] = set()  # the question's terms its title and headings hold
        if leaves_names and documents and chunk.source in documents:
            setting = set(analyze(documents[chunk.source].context_at(start), chunk.language))  # (cached)
            carried |= strong & setting
        own = sum(w * terms.credit(t, carried) for t, w in weights.items()) / total
        # a sentence that leaves its names to its title and headings leaves them the setting too
        # ('La séance est levée à 16h05.' in the minutes titled 'Comité de démolition, séance du 20
        # juin'): for ranking only, the setting's terms count as its own; its answerability does
        # not change (`answerability()` reads the coverage, not the score)
        # (the question's own terms only: a stand-in the headings hold, a translation, gained as
        # many answers as it lost across languages)
        in_setting = sum(w * terms.credit(t, carried | (setting & weights.keys())) for t, w in weights.items()) / total - own
        paired = sum(w * terms.credit(t, sentence_terms | previous_terms) for t, w in weights.items()) / total
        around = sum(w * terms.credit(t, passage_terms[chunk.id]) for t, w in weights.items()) / total
        coverage = (0.75 - PREVIOUS) * own + PREVIOUS * paired + 0.25 * around
        previous_terms, previous_own = carried, sentence_terms
        previous_chunk, previous_end = chunk.id, end
        score = coverage + (0.75 - PREVIOUS) * in_setting + 0.1 / rank  # answerability() uses the coverage and the similarity
        strength = answer_type.strength(_across(wanted, query, chunk.language), text, query.text, chunk.language)
        if chunk.language not in asked_terms:
            asked_terms[chunk.language] = set(analyze(query.text, chunk.language))
        if not sentence_terms - asked_terms[chunk.language]:
            strength = 0.0  # a sentence that only restates the question (a heading) answers nothing
            score -= 0.5
        fits = strength > 0
        if wanted is not None:  # an answer of that kind is what was asked for
            score += 0.15 if strength == 1 else -0.1 if fits else -0.5
            if fits and wanted.kind == "person" and answer_type.by_agent(text, query.text, chunk.language):
                score += AGENT_BONUS  # "conçu par Riquet": the one who did what is asked
        scored.append([score, coverage, 0.0, fits, chunk, start, end, text])
    # the dense similarity (weight 0.5) is the costly part: only the sentences that the rest of the
    # score already ranks highest are embedded (the others keep similarity 0)
    embedded = sorted(scored, key=lambda s: -s[0])[:EMBEDDED_SENTENCES]
    for item, sim in zip(embedded, _similarities(query.text, [item[7] for item in embedded], embedder)):
        item[0] += 0.5 * sim
        item[2] = sim
    scored.sort(key=lambda s: -s[0])
    picked = []
    for item in scored:
        if not any(_same_sentence(item[7], other[7], item[4].language) for other in picked):
            picked.append(item)
            if len(picked) == limit:
                break
    around = [context(chunk, start, end, documents) for _, _, _, _, chunk, start, end, _ in picked]
    words_embedder = _Memo(embedder) if embedder is not None else None
    if words_embedder is not None:  # the words that may stand for an unsure detail, in one call
        needed = []
        for (_, _, _, fits, chunk, _, _, _), near in zip(picked, around):
            unsure = _unheld(query, terms, near, chunk.language)[1] if fits else []
            needed += [w for _, w in unsure] + [c for _, w in unsure for c in _stand_in_forms(w, near)]
        if needed:
            words_embedder.embed(needed)
    chosen = []
    for (score, coverage, sim, fits, chunk, start, end, text), near in zip(picked, around):
        # (only a sentence holding an answer of the asked kind may answer: the policy reads no other's)
        unfound = unfound_details(query, terms, near, chunk.language, words_embedder) if fits else ()
        changed = changed_complements(query, terms, text, near, chunk.language, words_embedder) if fits else ()
        chosen.append(Evidence(len(chosen) + 1, chunk, start, end, text, round(score, 4), round(coverage, 4),
                               round(sim, 4), fits, unfound, changed))
    return chosen


AGENT_BONUS = 0.15  # a "who" answered by "<question's word> by <Name>" ('conçu par Riquet'); as much as the
# kind's own bonus: on squad2-en +1 answer ('Huguenots led by Jessé de Forest'), nothing lost on 5 sets (0.3: the same)
CLOSE_WORD = 0.7  # embedding similarity at which a word of the text stands for a detail of the question
# ('Swiss' for 'Switzerland'; 'north' for 'northern'); swapped details mostly score lower ('China' /
# 'countries' 0.54, 'Eastern' / 'Western' 0.63), with the multilingual USE embedder on the four evaluation sets
SAME_NAME_EXTRA = 3  # letters a form of a name may add or drop ('Huguenots', 'Iranian'); more is another word


def context(chunk: Chunk, start: int, end: int, documents: Mapping[str, Document] | None = None) -> str:
    """Where a detail of the question must be for the evidence sentence at file offsets start:end
    to be about it: the sentence with its neighbours (`neighbourhood`), and the title and headings
    of its document above it (`Document.context_at`): a table row under 'Règlement 1324' answers a
    question about règlement 1324. (The file's name is not: with it, 2 unanswerable questions of
    the devsets found their subject in a name such as 'rapport_tp_sockets_esiee.docx' and got
    answered, for 1 answerable question no longer refused.)

    >>> from rag.chunking import Chunk
    >>> c = Chunk("c", "f.pdf", 10, 20, 1, "Unités | 891", "fr")
    >>> context(c, 10, 20, {c.source: Document(c.source, "", "0", title="Règlement 1324")})
    'Unités | 891\\nRèglement 1324'
    """
    near = neighbourhood(chunk, start, end)
    document = (documents or {}).get(chunk.source)
    if document is None:
        return near
    above = document.context_at(start)
    return f"{near}\n{above}" if above else near


def neighbourhood(chunk: Chunk, start: int, end: int) -> str:
    r"""The evidence sentence at file offsets start:end with the sentence before and after it in
    its passage: where a detail of the question must be for the sentence to be about it.

    >>> from rag.chunking import Chunk
    >>> c = Chunk("c", "f.txt", 0, 32, 1, "One.\n\nTwo, here.\n\nThree.\n\nFour.", "en")
    >>> neighbourhood(c, 6, 16)
    'One.\n\nTwo, here.\n\nThree.'
    """
    spans = evidence_spans(chunk.text, chunk.language)
    a, b = start - chunk.start, end - chunk.start
    inside = [i for i, (x, y) in enumerate(spans) if x < b and a < y]
    if not inside:
        return chunk.text[a:b]
    first, last = max(0, inside[0] - 1), min(len(spans) - 1, inside[-1] + 1)
    return chunk.text[spans[first][0] : spans[last][1]]


def unfound_details(query: Query, terms: QueryTerms, text: str, lang: Lang,
                    embedder: Embedder | None = None) -> tuple[str, ...]:
    """The question's details (`query.strong`: its names and numbers, as analysed terms) that `text`
    does not hold. A detail is held by its term or a stand-in of it; by its word glued to another
    (text that lost its spaces: 'indirectFICOVIE'); or, with an embedder, by a word close in
    meaning ('Swiss' for 'Switzerland'). A name is not held by a different word that only shares
    its stem: 'Regexator' is not 'Regex'.

    >>> from rag.query import analyse
    >>> q = analyse("How many Huguenots lived in Amsterdam in 1705?", "en")
    >>> unfound_details(q, QueryTerms(q.weights), "In 1628 the Huguenots of New Amsterdam built a church.", "en")
    ('1705',)
    >>> q = analyse("How much does a Regexator license cost?", "en")
    >>> unfound_details(q, QueryTerms(q.weights), "Table 10: Regex options.", "en")
    ('regex',)
    """
    unfound, unsure = _unheld(query, terms, text, lang)
    if unsure and embedder is not None:
        candidates = [_stand_in_forms(w, text) for _, w in unsure]
        context = list(dict.fromkeys(c for found in candidates for c in found))
        if context:
            vectors = embedder.embed([w for _, w in unsure] + context)
            similarity = vectors[: len(unsure)] @ vectors[len(unsure):].T
            column = {c: i for i, c in enumerate(context)}
            unsure = [u for u, row, found in zip(unsure, similarity, candidates)
                      if max((float(row[column[c]]) for c in found), default=0.0) < CLOSE_WORD]
    return tuple(sorted(unfound + [t for t, _ in unsure]))


def changed_complements(query: Query, terms: QueryTerms, text: str, near: str, lang: Lang,
                        embedder: Embedder | None = None) -> tuple[str, ...]:
    """The question's complements that the sentence `text` replaces by its own: the question asks
    about "le refus des *notifications push*" or "le procès en *réhabilitation*", the sentence
    speaks of "le refus des *cookies*", "son procès pour *hérésie*", and neither it nor the
    sentences beside it, nor the title and headings above it (`near`: `context()`), hold the
    question's word. A complement is the word after a noun and a linking word (the pack's
    `complement_links`, then at most one article). Not a change: a
    complement that is a name or a number (those are details: `unfound_details`), one of the
    question's own words ("a retaliation for the prior assassination" over "in retaliation for the
    assassination"), a figure ("une conservation de 25 ans"), or, with an embedder, a word close in
    meaning to the question's (CLOSE_WORD: "le prix du billet" over "le prix du ticket"). Returned
    as analysed terms; the answer policy refuses a sentence that has one (`policy.decide`).

    >>> from rag.query import analyse
    >>> q = analyse("Combien de temps la CNIL conserve-t-elle le refus des notifications push ?", "fr")
    >>> text = "La CNIL recommande de conserver le refus des cookies pendant 6 mois."
    >>> changed_complements(q, QueryTerms(q.weights), text, text, "fr")
    ('notif',)
    >>> changed_complements(q, QueryTerms(q.weights), text, text + " Les notifications push aussi.", "fr")
    ()
    """
    if lang != query.terms_language:
        return ()
    asked = _complements(query.text, lang)
    if not asked:
        return ()
    question_terms = {t for noun, term, _ in asked for t in (noun, term)} | set(terms.weights)
    given = [(noun, word) for noun, term, word in _complements(text, lang)
             if term not in question_terms and not word[:1].isdigit()]
    if not given:
        return ()
    held = set(analyze(near, lang))
    changed = []
    for noun, term, word in asked:
        if term in query.strong or noun in query.strong or term not in terms.weights or terms.credit(term, held) > 0:
            continue
        others = [w for n, w in given if n == noun]
        if not others:
            continue
        if embedder is not None:
            vectors = embedder.embed([word] + others)
            if float(np.max(vectors[1:] @ vectors[0])) >= CLOSE_WORD:
                continue  # another word for the same thing
        changed.append(term)
    return tuple(dict.fromkeys(changed))


@lru_cache(maxsize=1 << 10)
def _complements(text: str, lang: Lang) -> tuple[tuple[str, str, str], ...]:
    """(noun, complement, complement as written) of a text: a word, one linking word and at most
    one article, then a word ("refus des cookies", "trial for heresy"); noun and complement as
    analysed terms, the complement's word folded."""
    pack = pack_of(lang)
    tokens = words(text, lang)
    terms = [_term(t, lang) for t in tokens]
    articles = {fold(a).rstrip("'") for a in pack.articles}
    found = []
    for i, term in enumerate(terms[:-2]):
        if term is None or tokens[i + 1] not in pack.complement_links:
            continue
        j = i + 2
        if terms[j] is None and tokens[j] in articles and j + 1 < len(tokens):
            j += 1
        if terms[j] is not None:
            found.append((term, terms[j], tokens[j]))
    return tuple(found)


def _term(token: str, lang: Lang) -> str | None:
    """The analysed term of one word token, None for a stop word."""
    analysed = analyze(token, lang)
    return analysed[0] if len(analysed) == 1 else None


def _unheld(query: Query, terms: QueryTerms, text: str, lang: Lang) -> tuple[list[str], list[tuple[str, str]]]:
    """The details `text` does not hold, and the (term, word) of those that only a word close in
    meaning could still hold."""
    if not query.strong:
        return [], []
    held_terms = set(analyze(text, lang))
    held_words = set(words(text, lang))
    folded = fold(text)
    spelled = _name_words(query.text, query.terms_language)
    by_term: dict[str, list[str]] = {}
    for word, term in question_words(query.text, query.terms_language):
        by_term.setdefault(term, []).append(word.lower())  # as `_stand_in_forms` gives the text's words
    compounds = _compound_names(query.text, query.terms_language)
    centuries = _centuries(query.text, query.language, query.terms_language)
    unfound: list[str] = []
    unsure: list[tuple[str, str]] = []  # (term, word): held only if a word of the text means the same
    for term in sorted(query.strong):
        if term not in terms.weights:
            continue
        if term in centuries and any(_in_century(y, centuries[term]) for y in answer_type.years(text, lang)):
            continue  # "au XVIe siècle" held by "en 1564"
        if terms.credit(term, held_terms):
            names = [w for w in spelled.get(term, ()) if len(w) >= 4] if term in held_terms else []
            # (held by a stand-in, the name is written otherwise on purpose: 'Brazil' for 'Brésil')
            if names and not any(_same_name(w, h) for w in names for h in held_words):
                unfound.append(term)  # only the stem is shared
            continue
        forms = [w for w in by_term.get(term, ()) if len(w) >= 4] or compounds.get(term, [])
        if any(fold(w) in folded for w in forms):
            continue
        if query.language != lang and any(_same_name(fold(w), h) for w in forms for h in _name_forms(text)):
            continue  # the name as the text's language spells it ('Henri' for 'Henry', 'Floride' for 'Florida')
        if forms:
            unsure.append((term, forms[0]))
        else:  # a number, a short name
            unfound.append(term)
    return unfound, unsure


_ROMAN = {"i": 1, "v": 5, "x": 10, "l": 50}


def _centuries(question: str, lang: Lang, terms_lang: Lang | None = None) -> dict[str, int]:
    """The question's centuries named by their number (the pack's `century`, of the question's
    language `lang`), by the terms of their words as `terms_lang` analyses them (the question's
    terms: those of the corpus's language when the corpus has no document in the question's).

    >>> _centuries("Un établissement du XVIe siècle ?", "fr"), _centuries("A 16th-century settlement?", "en")
    ({'xvi': 16, 'siecl': 16}, {'16th': 16, 'centuri': 16})
    >>> _centuries("A 16th century settlement?", "en", "fr"), _centuries("A 16th century settlement?", "fr")
    ({'16th': 16, 'century': 16}, {})
    """
    p = pack_of(lang)
    terms_pack = pack_of(terms_lang or lang)
    found: dict[str, int] = {}
    if p.century is None:
        return found
    for m in p.century.finditer(fold(question)):
        number = m.group(1)
        if number.isdigit():
            value = int(number)
        else:  # a Roman numeral: a letter before a greater one is taken off ("xiv")
            digits = [_ROMAN[c] for c in number]
            value = sum(-d if d < after else d for d, after in zip(digits, digits[1:] + [0]))
        for term in analyze(m.group(0), terms_pack):  # ("16th-century" is one strong word: both its terms)
            found[term] = value
    return found


def _in_century(year: str, century: int) -> bool:
    return (century - 1) * 100 <= int(year) <= century * 100


def _compound_names(question: str, lang: Lang) -> dict[str, list[str]]:
    """The question's hyphenated names ('États-Unis', 'Nouvelle-Zélande'), as written, by each of
    their analysed terms: a name that only means something whole, in any language.

    >>> _compound_names("Quel numéro appeler aux États-Unis ?", "fr")
    {'etat': ['États-Unis'], 'unir': ['États-Unis']}
    """
    found: dict[str, list[str]] = {}
    for raw in re.findall(r"\b[^\W\d_]+(?:-[^\W\d_]+)+\b", normalize(question)):
        if raw[:1].isupper():
            for term in analyze(raw, lang):
                found.setdefault(term, []).append(raw)
    return found


def _stand_in_forms(word: str, text: str) -> list[str]:
    """What in `text` may stand for the question's `word`: for a hyphenated name, the names of
    several words as written ('United States' for 'États-Unis': 0.90 with the multilingual USE,
    against 0.58 for the folded 'etats-unis'); else the capitalised words, folded (`_name_forms`)."""
    if "-" in word:
        return list(dict.fromkeys(re.findall(r"\b[A-ZÀ-Ý][^\W\d_]+(?:[ -][A-ZÀ-Ý][^\W\d_]+)+", normalize(text))))
    return _name_forms(text)


def _name_forms(text: str) -> list[str]:
    """The capitalised words of a text, folded: what may stand for a detail of the question, itself
    a name ('Swiss' for 'Switzerland', 'North American' for 'northern')."""
    return list(dict.fromkeys(fold(w) for w in re.findall(r"\b[A-Z][^\W\d_]{2,}", normalize(text))))


class _Memo:
    """An embedder that embeds each text once (words recur from one evidence sentence to the next)."""

    def __init__(self, embedder: Embedder):
        self.embedder = embedder
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if new:
            self.vectors.update(zip(new, self.embedder.embed(new)))
        return np.array([self.vectors[t] for t in texts])


def _name_words(question: str, lang: Lang) -> dict[str, list[str]]:
    """The question's words written as names (capitalised past its first word, or with inner
    capitals), folded, by analysed term: {'regex': ['regexator']}."""
    names: dict[str, list[str]] = {}
    for position, raw in enumerate(re.findall(r"[^\W\d_][\w'-]*", normalize(question))):
        raw = re.sub(r"'s$", "", raw)
        if raw[:1].isupper() and len(raw) > 1 and (position > 0 or any(c.isupper() for c in raw[1:])):
            for word in words(raw, lang):
                if word.isalpha():
                    for term in analyze(word, lang):
                        names.setdefault(term, []).append(word)
    return names


def _same_name(a: str, b: str) -> bool:
    """Two spellings of one name: equal, or one the other with at most SAME_NAME_EXTRA letters more
    or changed at its end ('huguenots'/'huguenot', 'iranian'/'iran'), or a longer name one letter
    away (a misspelling: 'celeron'/'celoron'); not 'regexator'/'regex'.

    >>> _same_name("huguenots", "huguenot"), _same_name("celeron", "celoron"), _same_name("regexator", "regex")
    (True, True, False)
    """
    short, long = sorted((a, b), key=len)
    if len(short) >= SPELLING_MIN_LETTERS and Levenshtein.distance(a, b, score_cutoff=1) <= 1:
        return True
    return len(long) - len(short) <= SAME_NAME_EXTRA and long.startswith(short[: max(3, len(short) - 1)])


def _across(wanted: answer_type.AnswerType | None, query: Query, lang: str) -> answer_type.AnswerType | None:
    """The kind of answer looked for in a sentence in language `lang`: a count whose words are
    analysed in another language than the sentence's ('How many bird species...' over a French
    '85 espèces d'oiseaux', in a corpus with documents in both) is looked for as any figure, since
    the counted thing is spelled differently there.

    >>> from rag.query import analyse
    >>> q = analyse("How many bird species visit the reserve?", "en", ("en", "fr"))
    >>> _across(q.kind, q, "fr").kind, _across(q.kind, q, "en").kind
    ('figure', 'count')
    """
    if wanted is not None and wanted.kind == "count" and lang != query.terms_language:
        return answer_type.AnswerType("figure")
    return wanted


def term_idf(term: str, terms: QueryTerms, lexical: LexicalIndex) -> float:
    """A question term's idf; for a word the corpus never uses, that of its best-known stand-in
    (an English word weighs what its French counterpart weighs)."""
    stand_ins = terms.stand_ins.get(term)
    if term in lexical.vocabulary or not stand_ins:
        return lexical.idf(term)
    return max(lexical.idf(t) for t in stand_ins)


def _similarities(question: str, texts: list[str], embedder: Embedder | None) -> list[float]:
    if embedder is None:
        return [0.0] * len(texts)
    vectors = embedder.embed([question, *texts])
    return [float(x) for x in vectors[1:] @ vectors[0]]


def _same_sentence(a: str, b: str, lang: Lang) -> bool:
    return words(a, lang) == words(b, lang)


def numbers_in(text: str, lang: Lang) -> set[str]:
    """Numbers as written one way (by the language's conventions); digits inside a name (R1,
    H800) are not numbers.

    >>> sorted(numbers_in("2 000 GPU H800 pour R1 et 5,5 M$", "fr")), sorted(numbers_in("2,400 people", "en"))
    (['2000', '5.5'], ['2400'])
    """
    return set(re.findall(r"(?<![A-Za-z\d.])\d+(?:\.\d+)?", join_numbers(normalize(text), lang)))
