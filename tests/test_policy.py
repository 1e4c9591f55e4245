"""The answer policy: what refuses a question the documents do not answer, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.pipeline import Engine, answer, decision_for
from tests.conftest import engine_over


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return engine_over(tmp_path, {
        "war.txt": "The war\n\nThe French and Indian War began in 1754 in the Ohio Country. The British colonists "
                   "outnumbered the French settlers by about twenty to one.\nThe colonization of India occurred in "
                   "the 18th century under the East India Company.\n",
        "abbey.txt": "The abbey\n\nThe abbey was founded in 1102 by monks from Burgundy. Its library holds 4,000 books.\n",
    })


def test_a_question_the_documents_answer_is_answered(engine):
    decision = decision_for("When did the colonization of India occur?", engine, 5)
    assert decision.reason == "" and not decision.refuse(engine.settings.refusal_threshold)
    result = answer("When did the colonization of India occur?", engine, use_llm=False)
    assert not result.refused and "18th century" in result.text and result.score == decision.score


def test_a_negated_question_is_not_answered_by_the_sentence_that_does_not_negate(engine):
    result = answer("When did the colonization of India not occur?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "negation" and result.citations == []


def test_a_question_about_what_the_corpus_never_mentions_is_refused(engine):
    result = answer("How many manuscripts did the abbey's scriptorium copy?", engine, use_llm=False)
    assert result.refused and result.refusal_reason == "unknown-terms"


def test_the_word_for_the_kind_of_thing_asked_is_no_unknown_detail(engine):
    # "monastery" is nowhere in the corpus, but it is what is asked for, not a detail of it
    decision = decision_for("Which monastery was founded in 1102?", engine, 5)
    assert decision.reason != "unknown-terms"


def test_eval_sees_the_policy_score(engine):
    from rag.evaluation import question_answerability

    assert question_answerability("When did the colonization of India not occur?", engine, 5) == 0.0
    assert question_answerability("When did the colonization of India occur?", engine, 5) > 0.0
