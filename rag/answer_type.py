r"""What kind of answer a question asks for, and whether a sentence holds one.

A sentence that shares the question's words but holds nothing of the asked kind does not answer
it: 'En quelle année DeepSeek est-il entré en Bourse ?' is not answered by a sentence on Nvidia's
market value, which has no year; 'Combien d'utilisateurs ?' is not answered by '2 000 GPU'.
Evidence selection, the refusal decision and the check of the model's sentences all use this.

Kinds: "figure" (combien, how many/much, quel montant...), "count" (a figure of the counted
thing: 'combien de GPU' wants '2 000 GPU'), "duration" (combien de temps, how long), "year"
(quelle année, what year), "date" (quand, when), "person" (qui, who, quel investisseur...) and
"name" (quelle entreprise, which app...).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

from rag.text import _stopwords, analyze, fold, normalize, words

_QUANTITY = re.compile(
    r"\b(combien|quel(?:le)?s? (?:est|etait|a ete|sont) (?:le|la|les) (?:montant|cout|nombre|prix|valeur|budget|somme|"
    r"part|pourcentage)|how (?:many|much)|what (?:was|is|were) the (?:cost|number|price|amount|value|budget|share)|"
    r"quel(?:le)?s? (?:cout|montant|nombre|somme|budget|pourcentage|prix))"
)
_COUNTED = re.compile(r"\b(?:combien (?:de |d')|how many )(?:[a-z]+ ){0,1}?([a-z0-9][a-z0-9-]*)")
_DURATION = re.compile(r"\b(combien de temps|how long|pendant combien|depuis combien de temps)\b")
_YEAR_QUESTION = re.compile(r"\b(quelle annee|en quel an|what year|which year)\b")
_DATE_QUESTION = re.compile(r"^(?:\W*)(quand|when)\b|\b(a quelle date|quel jour|on what date|which day)\b")
_PERSON_QUESTION = re.compile(r"^\W*(?:(?:a|par|de|avec) )?(qui|who|whom)\b")
# "Quel investisseur...", "Which former Intel CEO...": a person is asked for by what they are.
_PERSON_NOUNS = (
    "investisseur|journaliste|essayiste|ecrivain|auteur|pdg|ceo|dirigeant|dirigeante|fondateur|cofondateur|"
    "president|presidente|ministre|chercheur|chercheuse|scientifique|expert|analyste|capital-risqueur|patron|"
    "directeur|directrice|ingenieur|economiste|entrepreneur|milliardaire|personnalite|personne|homme|femme|"
    "commentateur|professeur|investor|journalist|author|writer|founder|co-founder|cofounder|minister|researcher|"
    "scientist|analyst|capitalist|executive|engineer|economist|billionaire|person|politician|professor|chairman"
)
_PERSON_BY_ROLE = re.compile(
    r"\b(?:quel|quelle|quels|quelles|which|what) (?:[a-z'-]+ ){0,2}?(?:" + _PERSON_NOUNS + r")s?\b")
# "Quelle entreprise...", "Which app...": answered by a name (Gloo, ChatGPT, Canton, Wall Street Journal).
_NAMED_THINGS = (
    "entreprise|societe|firme|start-up|startup|compagnie|app|appli|application|journal|quotidien|revue|magazine|"
    "banque|ville|universite|organisation|company|firm|newspaper|bank|city|university|organization|organisation"
)
_NAME_QUESTION = re.compile(r"\b(?:quel|quelle|quels|quelles|which|what) (?:[a-z'-]+ )?(?:" + _NAMED_THINGS + r")s?\b")

# Number words; "un", "une" and "one" are left out: they are mostly articles and pronouns.
_NUMBER_WORDS = frozenset(
    "deux trois quatre cinq six sept huit neuf dix onze douze quinze vingt trente quarante cinquante "
    "soixante cent cents mille douzaine douzaines dizaine dizaines centaine centaines million millions "
    "milliard milliards two three four five six seven eight nine ten eleven twelve twenty thirty "
    "hundred hundreds thousand thousands million millions billion billions dozen dozens".split()
)
_TIME_UNITS = frozenset(
    "seconde secondes minute minutes heure heures jour jours semaine semaines mois an ans annee annees "
    "decennie decennies siecle siecles second seconds hour hours day days week weeks month months year years "
    "decade decades century centuries".split()
)
_MONTHS_AND_DAYS = frozenset(
    "janvier fevrier mars avril mai juin juillet aout septembre octobre novembre decembre lundi mardi mercredi "
    "jeudi vendredi samedi dimanche hier aujourd january february march april may june july august september "
    "october november december monday tuesday wednesday thursday friday saturday sunday yesterday today".split()
)
_DATE_STAMP = re.compile(r"\b\d{4}-\d{2}(?:-\d{2})?\b")  # "date 2025-01": metadata, not a figure
_YEAR = re.compile(r"(?<![\d-])(1[5-9]\d\d|20\d\d)(?![\d-])")
_NAME = re.compile(r"(?<![\w'@])[A-ZÀ-Ý][^\W\d_]*[a-zà-ÿ][^\W\d_]*")
_NEAR = 3  # words between a figure and the counted thing


@dataclass(frozen=True)
class AnswerType:
    kind: str
    counted: str = ""  # the counted thing, folded ('gpu', 'utilisateurs'), for kind "count"


def expected(question: str) -> AnswerType | None:
    """The kind of answer the question asks for, or None when any sentence may answer it.

    >>> expected("Combien de GPU H800 DeepSeek a-t-il utilisés ?")
    AnswerType(kind='count', counted='gpu')
    >>> expected("Combien a coûté l'entraînement de R1 ?").kind, expected("How long did it take?").kind
    ('figure', 'duration')
    >>> expected("Qui est le PDG de Y Combinator ?").kind, expected("En quelle année est paru le livre ?").kind
    ('person', 'year')
    >>> expected("Quel ancien CEO d'Intel a salué R1 ?").kind, expected("Which venture capitalist said it?").kind
    ('person', 'person')
    >>> expected("Quel poste Yann LeCun occupe-t-il ?") is None
    True
    """
    folded = _plain(question)
    if _YEAR_QUESTION.search(folded):
        return AnswerType("year")
    if _DATE_QUESTION.search(folded):
        return AnswerType("date")
    if _DURATION.search(folded):
        return AnswerType("duration")
    if _PERSON_QUESTION.search(folded) or _PERSON_BY_ROLE.search(folded):
        return AnswerType("person")
    if _NAME_QUESTION.search(folded):
        return AnswerType("name")
    counted = _COUNTED.search(folded)
    if counted and counted.group(1) not in _stopwords():
        return AnswerType("count", counted.group(1))
    if _QUANTITY.search(folded):
        return AnswerType("figure")
    return None


def fits(answer_type: AnswerType | None, sentence: str, question: str) -> bool:
    """Whether the sentence holds an answer of the expected kind that the question does not
    already state.

    >>> t = expected("Combien de GPU H800 DeepSeek a-t-il utilisés ?")
    >>> fits(t, "Il a été réalisé avec seulement 2 000 GPU H800.", ""), fits(t, "Il a coûté 6 millions.", "")
    (True, False)
    >>> fits(expected("Qui a fondé OpenAI ?"), "Ce modèle R1 surpasse celui d'OpenAI.", "Qui a fondé OpenAI ?")
    False
    """
    if answer_type is None:
        return True
    asked = _asked(question)
    tokens = words(_DATE_STAMP.sub(" ", sentence))
    if answer_type.kind == "year":
        return any(y not in asked for y in _YEAR.findall(normalize(sentence)))
    if answer_type.kind == "date":
        return any(y not in asked for y in _YEAR.findall(normalize(sentence))) or any(
            t in _MONTHS_AND_DAYS and t not in asked for t in tokens)
    if answer_type.kind in ("person", "name"):
        return _has_name(sentence, asked, answer_type.kind == "person")
    if answer_type.kind == "figure":
        return any(_is_figure(t) and t not in asked for t in tokens)
    wanted = _TIME_UNITS if answer_type.kind == "duration" else None
    for i, token in enumerate(tokens):
        if not _is_figure(token):
            continue
        following = tokens[i + 1 : i + 1 + _NEAR]
        if wanted is not None and any(t in wanted for t in following):
            return True
        if wanted is None and any(_same_word(t, answer_type.counted) for t in following):
            return True
    return False


@lru_cache(maxsize=64)
def _asked(question: str) -> frozenset[str]:
    return frozenset(words(question))


def _plain(question: str) -> str:
    """Folded question, words separated by single spaces, elided articles kept ('d'utilisateurs')."""
    return " ".join(re.findall(r"[a-z0-9][a-z0-9'-]*", fold(question)))


def _has_name(sentence: str, asked: set[str], person: bool = False) -> bool:
    """Whether the sentence names someone or something the question does not: a capitalised
    word (LeCun, ChatGPT, Gloo) past the sentence's first word, not a month, a handle or a
    function word. A person is named by first and last name (Marc Andreessen), one of which
    the question does not already give.

    >>> _has_name("Il a devancé ChatGPT sur l'App Store.", {"app", "store"}), _has_name("Le 27 janvier, l'IA.", set())
    (True, False)
    >>> _has_name("Le modèle de DeepSeek.", set(), person=True), _has_name("Selon Marc Andreessen.", set(), person=True)
    (False, True)
    """
    text = normalize(sentence)
    first = re.search(r"\w+", text)
    names = [m for m in _NAME.finditer(text)
             if fold(m.group()) not in _stopwords() and fold(m.group()) not in _MONTHS_AND_DAYS]
    if not person:
        return any(fold(m.group()) not in asked for m in names if first is None or m.start() >= first.end())
    return any(re.fullmatch(r"[ -]", text[a.end() : b.start()]) and not {fold(a.group()), fold(b.group())} <= asked
               for a, b in zip(names, names[1:]))


def _is_figure(token: str) -> bool:
    return token in _NUMBER_WORDS or bool(re.fullmatch(r"\d+(?:\.\d+)?", token))


def _same_word(a: str, b: str) -> bool:
    """Same word up to inflection or a close cognate: 'GPUs'/'GPU', 'scientists'/'scientifiques'."""
    a, b = a.rstrip("s"), b.rstrip("s")
    return a == b or analyze(a) == analyze(b) or len(os.path.commonprefix([a, b])) >= 7

