"""A misspelt word of the question stands for the corpus's spelling one letter away: it is found,
credited and not counted as a word the corpus never uses; short words never are."""

from conftest import engine_over

from rag.lexical import LexicalIndex
from rag.pipeline import answer

FILES = {"ohio.txt": "Céloron led an expedition of 200 soldiers down the Ohio River in 1749.\n\n"
                     "The Frenchmen buried lead plates along the river banks.",
         "other.txt": "The harbour of Brest was rebuilt after the war.\n\nFishing boats leave at dawn."}


def test_a_misspelt_name_finds_its_sentence_and_is_answered(tmp_path, monkeypatch):
    engine = engine_over(tmp_path, FILES, answer_mode="span")
    question = "How many soldiers were on Celeron's expedition?"
    result = answer(question, engine, use_llm=False)
    assert not result.refused, result.refusal_reason
    assert "200 soldiers" in result.text and result.citations[0].source == "ohio.txt"
    monkeypatch.setattr(LexicalIndex, "spelled_like", lambda self, term: [])
    assert answer(question, engine, use_llm=False).refused, "without the spelling, the name is unknown"


def test_spelled_like_needs_one_letter_and_a_long_word():
    lexical = LexicalIndex.build(list(FILES.values()), ["en", "en"])
    assert lexical.spelled_like("celeron") == ["celoron"]
    assert lexical.spelled_like("celoron") == [], "a term the corpus uses stands for nothing else"
    assert lexical.spelled_like("rivre") == [] and lexical.spelled_like("celxxon") == []
