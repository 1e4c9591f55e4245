"""Follow-up questions: "Et combien a coûté son entraînement ?" means nothing to retrieval on its
own. A question that leans on the conversation (it starts with 'et'/'and', uses a pronoun or a
possessive, or has almost no content words) gets the names and key terms of the previous question
appended, so retrieval sees a self-contained query. The rewrite never makes a question longer than
the settings' `max_question_chars` (a follow-up to a long question would otherwise be refused as too
long): where the names would not fit, the user's own question is used as it is."""

from __future__ import annotations

import re

from rag.settings import Settings
from rag.languages import detect, pack
from rag.text import analyze, fold, normalize


def is_follow_up(question: str) -> bool:
    """Whether the question leans on the conversation.

    >>> is_follow_up("Et combien a coûté son entraînement ?"), is_follow_up("Qui dirige Meta ?")
    (True, False)
    >>> is_follow_up("Combien DeepSeek a-t-il dépensé ?"), is_follow_up("And what did it cost?")
    (False, True)
    """
    p = pack(detect(question, "fr") or "fr")
    folded = fold(question).strip()
    if p.inversion is not None:
        folded = p.inversion.sub(" ", folded)
    tokens = set(re.findall(r"[a-z]+", folded))
    return folded.startswith(p.followup_openers) or bool(tokens & p.followup_pronouns) or len(analyze(question, p)) <= 1


def contextualize(question: str, previous_questions: list[str],
                  max_chars: int = Settings.max_question_chars) -> str:
    """The question, made self-contained with what the last question was about; never longer than
    `max_chars` (pass the settings' `max_question_chars`) unless the question itself is.

    >>> contextualize("Et combien a coûté son entraînement ?", ["Qu'est-ce que le modèle R1 de DeepSeek ?"])
    'Et combien a coûté son entraînement ? (R1 DeepSeek modèle)'
    >>> contextualize("Et son prix ?", ["Qu'est-ce que le modèle R1 de DeepSeek ?"], max_chars=20)
    'Et son prix ?'
    >>> contextualize("  ", ["Qu'est-ce que le modèle R1 de DeepSeek ?"])
    '  '
    """
    if not previous_questions or not question.strip() or not is_follow_up(question):
        return question  # an empty question stays empty: answer() says so, nothing is made up
    last = normalize(previous_questions[-1])
    p = pack(detect(last, "fr") or "fr")
    present = set(analyze(question, p))
    names, others = [], []
    for raw in re.findall(r"[\w-]+", last):
        terms = analyze(raw, p)
        if not terms or terms[0] in present:
            continue
        named = raw[:1].isupper() or any(c.isdigit() for c in raw)
        (names if named else others).append(raw)
        present.update(terms)
    carried = names + others[:2]
    if not carried:
        return question
    rewritten = f"{question} ({' '.join(carried)})"
    return rewritten if len(rewritten.strip()) <= max_chars else question
