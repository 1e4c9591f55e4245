"""Language packs: what the pipeline knows about French and English is data, and each document
and question is read with its own language's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import languages
from rag.answer_type import expected, fits
from rag.followup import is_follow_up
from rag.pipeline import Engine, answer, refusal
from rag.query import analyse
from rag.text import analyze, join_numbers, sentence_spans, words
from tests.conftest import engine_over


@pytest.mark.parametrize("code", languages.codes())
def test_every_pack_loads_with_all_its_parts(code):
    pack = languages.pack(code)
    assert pack.stopwords and pack.number_words and pack.time_units and pack.calendar
    assert set(pack.kinds) == set(languages.KIND_ORDER)
    for key in ("refusal", "according", "disagree", "instruction", "unsupported", "warm_up", "closest"):
        assert pack.text(key).strip(), key


@pytest.mark.parametrize("code", languages.codes())
def test_every_pack_has_the_span_task_with_examples_a_span_can_answer(code):
    task = languages.pack(code).span
    for value in (task.instruction, task.text_label, task.question_label, task.answer_label, task.refusal_word):
        assert value.strip()
    assert len(task.examples) >= 4
    for example in task.examples:  # each solved answer is words copied from its text, as asked of the model
        assert example.answer in " ".join(example.text) and example.question.strip()
    assert task.unanswered.answer == task.refusal_word
    assert task.refusal_word not in " ".join(task.unanswered.text)


def test_an_unknown_language_code_names_the_packs_there_are():
    with pytest.raises(KeyError, match="en, fr"):
        languages.pack("xx")


@pytest.mark.parametrize(
    ("text", "code"),
    [("Who is the CEO of Acme?", "en"), ("Qui dirige l'entreprise ?", "fr"), ("What did the war cost?", "en"),
     ("Combien a coûté la guerre ?", "fr"), ("Кто основал компанию?", None), ("من أسس الشركة؟", None),
     ("谁创立了这家公司？", None)],
)
def test_language_detection(text, code):
    assert languages.detect(text, "fr") == code


def test_a_question_no_word_tells_takes_the_corpus_language():
    assert languages.detect("DeepSeek R1 ?", "en") == "en" and languages.detect("DeepSeek R1 ?", "fr") == "fr"


def test_english_is_analysed_as_english():
    assert analyze("colonies", "en") == analyze("colony", "en")
    assert analyze("founded", "en") == analyze("founding", "en") == analyze("found", "en")
    assert analyze("They shouldn't have gone", "en") == ["gone"]
    assert words("Acme's CEO", "en") == ["acme", "ceo"]


def test_number_conventions_follow_the_language():
    assert join_numbers("2,400 men and 5.5 miles", "en") == "2400 men and 5.5 miles"
    assert join_numbers("2 400 hommes et 5,5 km", "fr") == "2400 hommes et 5.5 km"
    assert "2400" in words("about 2,400 settlers", "en")


def test_answer_kinds_hold_on_general_text():
    who = expected("Who led the expedition?", "en")
    assert fits(who, "It was led by Dieskau.", "Who led the expedition?", "en")  # a single surname
    assert fits(who, "It was led by J. R. Smith.", "Who led the expedition?", "en")
    assert fits(who, "The expedition was led by the Huguenots.", "Who led the expedition?", "en")  # a group
    assert not fits(who, "It was led with great care.", "Who led the expedition?", "en")
    year = expected("What year was the abbey founded?", "en")
    assert fits(year, "The abbey was founded in 732.", "What year was the abbey founded?", "en")
    assert not fits(year, "The abbey lost 589 monks.", "What year was the abbey founded?", "en")
    when = expected("When was the fort built?", "en")
    assert fits(when, "The fort was built in the 18th century.", "When was the fort built?", "en")
    many = expected("How many original colonies were there?", "en")
    assert fits(many, "There were 13 colonies.", "How many original colonies were there?", "en")


def test_sentences_keep_abbreviations_and_hard_wrapped_lines():
    text = "Dr. Martin met Mr. Smith at St. Lawrence. The war\nended in 1763.\nA new line."
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Dr. Martin met Mr. Smith at St. Lawrence.", "The war\nended in 1763.", "A new line."]


def test_a_french_inverted_pronoun_is_no_follow_up():
    assert not is_follow_up("Combien DeepSeek a-t-il dépensé pour R1 ?")
    assert is_follow_up("Et combien a-t-il coûté ?")


def test_query_is_analysed_once_with_its_language():
    query = analyse("When did the colonization of India not occur?", "en", ("en",))
    assert query.language == "en" and query.kind.kind == "date" and query.negated and "india" in query.strong


@pytest.fixture
def english_engine(tmp_path: Path) -> Engine:
    return engine_over(tmp_path, {
        "acme.txt": "Acme annual report\n\nAcme makes anvils and rockets. The current chief executive officer of "
                    "Acme is Sofia Brandt, who joined in 2019.\nAcme employs about 2,400 people in three countries.\n",
        "rivers.txt": "Rivers\n\nThe Loire is the longest river in France. It flows for 1,006 kilometres.\n",
    }, refusal_threshold=0.3)


def test_english_documents_are_indexed_as_english(english_engine):
    index = english_engine.index
    assert index.language == "en" and {c.language for c in index.chunks} == {"en"}
    assert index.manifest["languages"] == {"en": 2}


def test_an_english_question_gets_an_english_answer_with_the_figure(english_engine):
    result = answer("How many people does Acme employ?", english_engine, use_llm=False)
    assert not result.refused and result.language == "en"
    assert result.text.startswith(languages.pack("en").text("according")) and "2,400 people" in result.text


def test_who_is_answered_by_a_role_written_out(english_engine):
    result = answer("Who is the chief executive officer of Acme?", english_engine, use_llm=False)
    assert not result.refused and "Sofia Brandt" in result.text


@pytest.mark.parametrize("question", ["Кто руководит компанией Acme?", "谁是Acme的首席执行官？", "من يدير شركة Acme؟"])
def test_a_question_in_a_language_no_pack_covers_is_refused_with_what_can_be_asked(english_engine, question):
    result = answer(question, english_engine, use_llm=False)
    assert result.refused and result.citations == [] and "English" in result.text and "français" in result.text
    assert english_engine.generator.prompts == []


def test_refusal_speaks_the_question_language():
    assert refusal("en") != refusal("fr")


def test_the_antonyms_file_is_made_from_wordnet_links_and_exception_lists(tmp_path):
    """scripts/wordnet_antonyms.py on a two-link WordNet: each antonym pointer in both directions,
    the antonym's irregular forms after it, multi-word and capitalised lemmas left out."""
    import runpy

    header = "  1 This software and database is being provided to you\n"
    (tmp_path / "data.adj").write_text(
        header + "00001740 00 a 01 eastern 0 001 ! 00001800 a 0101 | lying toward the east\n"
                 "00001800 00 a 02 western 0 Far_West 0 001 ! 00001740 a 0101 | lying toward the west\n")
    (tmp_path / "data.verb").write_text(
        header + "00002000 30 v 01 win 0 001 ! 00002100 v 0101 01 + 02 00 | be the winner\n"
                 "00002100 30 v 01 lose 0 000 01 + 02 00 | fail to win\n")
    (tmp_path / "data.noun").write_text(header)
    (tmp_path / "data.adv").write_text(header)
    for name, lines in {"verb": "lost lose\nwon win\n", "noun": "", "adj": "", "adv": ""}.items():
        (tmp_path / f"{name}.exc").write_text(lines)
    module = runpy.run_path(str(Path(__file__).parent.parent / "scripts" / "wordnet_antonyms.py"))
    assert module["antonym_pairs"](tmp_path) == {("eastern", "western"), ("western", "eastern"),
                                                 ("win", "lose"), ("lose", "win")}
    assert module["irregular_forms"](tmp_path)["lose"] == {"lost"}
