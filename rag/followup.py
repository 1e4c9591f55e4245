"""Follow-up questions: "Et combien a coûté son entraînement ?" means nothing to retrieval on its
own. A question that leans on the conversation (it starts with 'et'/'and', uses a pronoun or a
possessive, or has almost no content words) gets the names and key terms of the previous question
appended, so retrieval sees a self-contained query."""

from __future__ import annotations

import re

from rag.text import analyze, fold, normalize

_LEANING = frozenset(
    "il elle ils elles son sa ses leur leurs lui celui celle ceux cela ca ce cet cette ces "
    "it its they their them he she his her this that these those".split()
)
_OPENERS = ("et ", "and ", "aussi", "also", "puis ", "then ")


def is_follow_up(question: str) -> bool:
    """Whether the question leans on the conversation.

    >>> is_follow_up("Et combien a coûté son entraînement ?"), is_follow_up("Qui dirige Meta ?")
    (True, False)
    """
    folded = fold(question).strip()
    tokens = set(re.findall(r"[a-z]+", folded))
    return folded.startswith(_OPENERS) or bool(tokens & _LEANING) or len(analyze(question)) <= 1


def contextualize(question: str, previous_questions: list[str]) -> str:
    """The question, made self-contained with what the last question was about.

    >>> contextualize("Et combien a coûté son entraînement ?", ["Qu'est-ce que le modèle R1 de DeepSeek ?"])
    'Et combien a coûté son entraînement ? (R1 DeepSeek modèle)'
    """
    if not previous_questions or not is_follow_up(question):
        return question
    last = normalize(previous_questions[-1])
    present = set(analyze(question))
    names, others = [], []
    for raw in re.findall(r"[\w-]+", last):
        terms = analyze(raw)
        if not terms or terms[0] in present:
            continue
        named = raw[:1].isupper() or any(c.isdigit() for c in raw)
        (names if named else others).append(raw)
        present.update(terms)
    carried = names + others[:2]
    return f"{question} ({' '.join(carried)})" if carried else question
