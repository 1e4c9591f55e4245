import json

import pytest

from rag.errors import UsageError
from rag.evaluation import contains_answer, percentile, read_gold, read_gold_file, refusal_calibration, token_f1


def test_answers_match_across_french_number_and_accent_forms():
    assert contains_answer("avec 2\u202f000 GPU", ["2 000"])
    assert contains_answer("un coût de 5,5 millions", ["5.5 millions"])
    assert contains_answer("L’équipe de Canton", ["canton"])
    assert not contains_answer("en 12 000 heures", ["2 000"])
    assert not contains_answer("rien", [])


def test_token_f1_takes_the_best_acceptable_answer():
    assert token_f1("Garry Tan", ["Garry Tan", "Tan"]) == 1.0
    assert 0 < token_f1("le PDG est Garry Tan", ["Garry Tan"]) < 1
    assert token_f1("personne", ["Garry Tan"]) == 0.0


def test_percentile_interpolates():
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([], 0.5) is None


def test_refusal_calibration_counts_both_kinds_of_error():
    records = [{"unanswerable": True, "answerability": 0.2}, {"unanswerable": True, "answerability": 0.6},
               {"unanswerable": False, "answerability": 0.4}, {"unanswerable": False, "answerability": 0.9}]
    table = {row["threshold"]: row for row in refusal_calibration(records, [0.3, 0.5, 0.7])}
    assert table[0.3] == {"threshold": 0.3, "accuracy": 0.5, "false_refusal_rate": 0.0}
    assert table[0.5] == {"threshold": 0.5, "accuracy": 0.5, "false_refusal_rate": 0.5}
    assert table[0.7] == {"threshold": 0.7, "accuracy": 1.0, "false_refusal_rate": 0.5}


def test_a_bad_gold_row_is_skipped_with_its_line_and_the_good_ones_are_kept(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps({"id": "a", "question": "Q ?", "answers": ["x"], "sources": []}) + "\n{oops\n")
    assert [q.id for q in read_gold(path)] == ["a"]
    skipped = read_gold_file(path).skipped
    assert [row.line for row in skipped] == [2] and skipped[0].reason.startswith("not valid JSON")


def test_a_gold_file_without_a_usable_row_is_an_error_naming_the_lines(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text("{oops\n" + json.dumps({"id": "a", "question": "Q ?", "answers": [], "unanswerable": False}) + "\n")
    with pytest.raises(UsageError, match="g.jsonl:1: not valid JSON.*g.jsonl:2: an answerable question needs at least one"):
        read_gold(path)
    path.write_text("\n\n")
    with pytest.raises(UsageError, match="holds no question"):
        read_gold(path)


def test_a_correct_citation_into_a_pdf_is_scored_on_its_page():
    from types import SimpleNamespace

    from rag.citations import Citation
    from rag.evaluation import GoldQuestion, answer_metrics, answer_record

    gold = GoldQuestion("q", "Combien ?", ["891"], ["bylaw.pdf"], False, page=3)

    def run(page):
        quote = "La Ville estime à 891 le nombre de nouvelles unités."
        result = SimpleNamespace(text=quote + " [1]", refused=False, mode="extractive", draft="", tokens_per_s=None,
                                 timings={"retrieve": 1, "first_token": 1, "total": 1},
                                 citations=[Citation(1, "bylaw.pdf", 4, 10, 62, quote, page)])
        record = answer_record(gold, result, lambda source, start, end: quote)
        return {**record, "unanswerable": False}

    right, wrong = run(3), run(4)
    assert right["page_correct"] and not right["problems"]
    assert not wrong["page_correct"] and wrong["problems"] == ["cites page 4, the answer is on page 3"]
    assert answer_metrics([right, wrong])["citations"]["page_accuracy"] == 0.5
