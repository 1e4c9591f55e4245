"""The benchmark-style metrics of `rag eval` (SQuAD EM/F1, source@k, cites_source), bad gold rows
skipped, and a question that fails recorded without stopping the run. Fast: fake engine, no model."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from rag.citations import Citation
from rag import languages
from rag.evaluation import (
    GoldQuestion,
    answer_metrics,
    answer_record,
    answer_text,
    evaluate,
    read_gold_file,
    retrieval_metrics,
    retrieval_record,
    squad_exact_match,
    squad_f1,
    squad_normalize,
)

QUESTION = "Combien de personnes emploie la boulangerie Martin ?"


# ---------------------------------------------------------------- normalisation and scores


def test_squad_normalisation_is_the_official_one_in_english():
    assert squad_normalize("The  Cat, sat on a mat!") == "cat sat on mat"
    assert squad_normalize("« Bonjour », dit-il…") == "bonjour ditil"  # Unicode punctuation too (MLQA's way)
    assert squad_normalize("Theatre and anthem") == "theatre and anthem"  # articles only as whole words


def test_french_articles_are_dropped_for_french_only():
    assert languages.pack("en").articles == ("a", "an", "the") and "l'" in languages.pack("fr").articles
    assert squad_normalize("L’entraînement de R1 a coûté « 5,5 millions » des dollars", "fr") == \
        "entraînement r1 coûté 55 millions dollars"
    assert squad_normalize("le prix d'un GPU", "fr") == "prix gpu"
    assert squad_normalize("le prix d'un GPU", "en") == "le prix dun gpu"
    assert squad_normalize("aujourd'hui", "fr") == "aujourdhui"  # d' only as an article


def test_exact_match_and_f1_take_the_best_acceptable_answer():
    assert squad_exact_match("The Garry Tan.", ["Tan", "garry tan"]) == 1.0
    assert squad_exact_match("Garry Tan, CEO", ["Garry Tan"]) == 0.0
    assert squad_f1("Garry Tan, the CEO", ["Garry Tan"]) == pytest.approx(0.8)
    assert squad_f1("les 2 000 GPU", ["2 000 GPU"], "fr") == 1.0
    assert squad_f1("personne", ["Garry Tan"]) == 0.0
    assert squad_f1("", [""]) == 1.0 and squad_f1("x", [""]) == 0.0  # SQuAD: no token on either side


@pytest.mark.parametrize("text, words", [
    ("Garry Tan [1].", "Garry Tan."),
    ("Garry Tan [2][3], PDG [1].", "Garry Tan, PDG."),
    ("D'après les sources : « Il a coûté 6 M$. » [1].", "Il a coûté 6 M$."),
    ("According to the sources: « It cost $6M » [2].", "It cost $6M."),
    ("According to the sources: « It cost $6M. » [1]. « It was cheap. » [2].", "It cost $6M. It was cheap."),
    ("D'après les sources : « Il a dit « non » hier. » [1]. Les sources divergent : 5 [2], 6 [3].",
     "Il a dit « non » hier. Les sources divergent : 5, 6."),
])
def test_answer_text_drops_citation_markers_and_the_extractive_wrapper(text, words):
    assert answer_text(text) == words


# ---------------------------------------------------------------- one answer scored


def _answer(text, citations=(), refused=False):
    return SimpleNamespace(text=text, refused=refused, mode="refused" if refused else "llm", draft="",
                           tokens_per_s=None, timings={"retrieve": 1, "first_token": 1, "total": 2},
                           citations=list(citations))


def _cite(source, quote="Elle emploie 12 personnes."):
    return Citation(1, source, 0, 0, len(quote), quote)


def _scored(gold, result):
    return {**answer_record(gold, result, lambda source, start, end: "Elle emploie 12 personnes."),
            "unanswerable": gold.unanswerable}


GOLD = GoldQuestion("q", QUESTION, ["12 personnes"], ["alpha.txt"], False)
NO_ANSWER = GoldQuestion("u", "Quel est le nom du chat du maire ?", [], [], True)


def test_citation_markers_and_the_wrapper_do_not_cost_exact_match():
    record = _scored(GOLD, _answer("D'après les sources : « 12 personnes. » [1].", [_cite("alpha.txt")]))
    assert record["exact_match"] == 1.0 and record["squad_f1"] == 1.0 and record["f1"] == 1.0 and record["correct"]
    record = _scored(GOLD, _answer("Elle emploie les 12 personnes [1][2].", [_cite("alpha.txt")]))
    assert record["exact_match"] == 0.0 and record["squad_f1"] == pytest.approx(2 / 3, abs=1e-4)


def test_a_marker_is_no_answer():
    gold = GoldQuestion("q", "Combien de mois ?", ["4"], ["alpha.txt"], False)
    record = _scored(gold, _answer("Plusieurs mois [1][2][3][4].", [_cite("alpha.txt")]))
    assert not record["correct"] and record["exact_match"] == 0.0 and record["f1"] == 0.0


def test_refusals_score_zero_when_answerable_and_one_when_unanswerable():
    refused, answered = _answer("Je ne trouve pas.", refused=True), _answer("Le chat Félix [1].", [_cite("beta.md")])
    on_answerable = _scored(GOLD, refused)
    assert (on_answerable["exact_match"], on_answerable["squad_f1"], on_answerable["cites_source"]) == (0.0, 0.0, None)
    assert _scored(NO_ANSWER, refused)["exact_match"] == 1.0
    assert _scored(NO_ANSWER, answered)["squad_f1"] == 0.0
    right = _scored(GOLD, _answer("12 personnes [1].", [_cite("alpha.txt")]))
    answers = answer_metrics([right, on_answerable, _scored(NO_ANSWER, refused), _scored(NO_ANSWER, answered)])["answers"]
    assert answers["exact_match"] == 0.5 and answers["squad_f1"] == 0.5  # answerable only
    assert answers["squad_v2_exact_match"] == 0.5 and answers["squad_v2_f1"] == 0.5  # 1 + 0 + 1 + 0 over 4


def test_cites_source_counts_answered_questions_citing_a_gold_file():
    good = _scored(GOLD, _answer("12 personnes [1][2].", [_cite("beta.md"), _cite("alpha.txt")]))
    elsewhere = _scored(GOLD, _answer("12 personnes [1].", [_cite("beta.md")]))
    uncited = _scored(GOLD, _answer("12 personnes."))
    refused = _scored(GOLD, _answer("Je ne trouve pas.", refused=True))  # not counted
    assert [r["cites_source"] for r in (good, elsewhere, uncited, refused)] == [True, False, False, None]
    assert answer_metrics([good, elsewhere, uncited, refused])["citations"]["cites_source"] == pytest.approx(0.3333)


# ---------------------------------------------------------------- source@k


def _hits(*sources, text="rien"):
    return [SimpleNamespace(rank=i, chunk=SimpleNamespace(source=s, text=text)) for i, s in enumerate(sources, start=1)]


def test_source_at_k_looks_at_the_files_of_the_retrieved_passages():
    def row(gold, hits):
        return {"unanswerable": gold.unanswerable, "sources": gold.sources, "language": "fr",
                "retrieval": retrieval_record(gold, hits)}

    first = row(GOLD, _hits("alpha.txt", "b"))
    third = row(GOLD, _hits("a", "b", "alpha.txt"))
    sixth = row(GOLD, _hits("a", "b", "c", "d", "e", "alpha.txt"))
    no_source = row(GoldQuestion("n", "Q ?", ["x"], [], False), _hits("a"))  # not counted for source@k
    assert (first["retrieval"]["source_rank"], third["retrieval"]["source_rank"], sixth["retrieval"]["source_rank"]) == (1, 3, 6)
    assert first["retrieval"]["answer_rank"] is None  # hit@k still asks for the answer in the passage
    metrics = retrieval_metrics([first, third, sixth, no_source, row(NO_ANSWER, _hits("alpha.txt"))])
    assert metrics["source@1"] == pytest.approx(0.3333) and metrics["source@5"] == pytest.approx(0.6667)
    assert metrics["n"] == 4 and metrics["hit@5"] == 0.0


# ---------------------------------------------------------------- bad gold rows


def test_bad_gold_rows_are_skipped_with_their_line_and_reason(tmp_path):
    rows = [
        {"id": "ok", "question": QUESTION, "answers": ["12"], "sources": ["alpha.txt"]},
        {"id": "empty", "question": "  ", "answers": ["12"]},
        "{not json",
        {"id": "noanswer", "question": "Combien ?", "answers": [], "unanswerable": False},
        {"question": "Sans id ?", "answers": ["x"]},
        {"id": "str", "question": "Combien ?", "answers": "12"},
        {"id": "u", "question": "Qui ?", "unanswerable": True},
    ]
    path = tmp_path / "gold.jsonl"
    path.write_text("\ufeff" + "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n\n", "utf-8")
    gold = read_gold_file(path)
    assert [q.id for q in gold.questions] == ["ok", "u"]
    reasons = {row.line: row.reason for row in gold.skipped}
    assert list(reasons) == [2, 3, 4, 5, 6]
    assert reasons[2] == "the question is empty"
    assert reasons[3].startswith("not valid JSON")
    assert reasons[4] == "an answerable question needs at least one acceptable answer"
    assert reasons[5].startswith("no id")
    assert reasons[6] == "answers is not a list of strings"


def test_the_cli_warns_of_each_skipped_row_and_the_report_lists_them(tmp_path, engine_factory, monkeypatch):
    from click.testing import CliRunner

    from rag.cli import cli
    from rag.pipeline import Engine

    engine = engine_factory()
    monkeypatch.setattr(Engine, "load", classmethod(lambda cls, settings: engine))  # no real model
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps({"id": "ok", "question": QUESTION, "answers": ["12"], "sources": ["alpha.txt"]})
                    + "\n" + json.dumps({"id": "e", "question": "", "answers": ["x"]}) + "\n", "utf-8")
    out = tmp_path / "r.json"
    done = CliRunner().invoke(cli, ["eval", "--no-llm", "--gold", str(path), "--json", str(out)])
    assert done.exit_code == 0, done.output
    assert done.stderr.splitlines()[0] == f"warning: {path}:2: the question is empty; skipped"
    report = json.loads(out.read_text())
    assert report["n"] == 1 and report["skipped_rows"] == [{"line": 2, "reason": "the question is empty"}]
    assert report["errors"] == [] and "source@1" in report["retrieval"] and "squad_v2_f1" in report["answers"]
    assert "SQuAD v2" in done.stdout and "1 gold row(s) skipped" in done.stdout


# ---------------------------------------------------------------- a question that fails


@pytest.mark.parametrize("retrieval_only", [False, True])
def test_a_question_that_fails_is_recorded_as_wrong_and_the_run_goes_on(engine_factory, monkeypatch, retrieval_only):
    import rag.evaluation
    import rag.pipeline

    engine = engine_factory(max_question_chars=60)
    long = GoldQuestion("long", QUESTION + " Et " + "encore " * 10 + "?", ["12 personnes"], ["alpha.txt"], False)
    unanswerable = GoldQuestion("u", "Quel est le nom du chat du maire de Lyon ?", [], [], True)
    if retrieval_only:  # retrieval-only does not validate the question: fail its answerability instead
        real = rag.evaluation.question_answerability

        def failing(question, engine, k):
            if question == long.question:
                raise RuntimeError("boom")
            return real(question, engine, k)

        monkeypatch.setattr(rag.evaluation, "question_answerability", failing)
    seen = []
    report = evaluate([long, GOLD, unanswerable], engine, use_llm=False, retrieval_only=retrieval_only,
                      progress=lambda: seen.append(1))
    assert len(seen) == 3 and report["n"] == 3
    failed = report["questions"][0]
    assert failed["error"] and failed["answerability"] is None
    assert report["errors"] == [{"id": "long", "message": failed["error"]}]
    assert len(report["refusal_calibration"]) == 17  # from the questions that did not fail
    if retrieval_only:
        assert failed["error"] == "RuntimeError: boom" and "answers" not in report
        return
    assert "60" in failed["error"] and failed["mode"] == "error" and failed["timings"] is None
    assert failed["correct"] is False and failed["exact_match"] == 0.0 and failed["problems"] == [f"error: {failed['error']}"]
    assert report["questions"][1]["correct"] and report["questions"][2]["refused"]
    assert report["answers"]["accuracy"] == 0.5  # the failed question counts as wrong
    assert report["latency"]["total_ms"]["p50"] is not None
    from rag.report import markdown, text_summary

    assert "1 question(s) failed" in text_summary(report)[-1]
    assert "Questions that failed" in markdown(report)


def test_an_unanswerable_question_that_fails_is_not_a_refusal():
    from rag.evaluation import error_record

    record = {**error_record(NO_ANSWER, "boom"), "unanswerable": True}
    metrics = answer_metrics([record, _scored(GOLD, _answer("12 personnes [1].", [_cite("alpha.txt")]))])
    assert metrics["refusals"]["accuracy"] == 0.0 and metrics["answers"]["squad_v2_exact_match"] == 0.5
