"""Integration tests: the real bundled models, the real seeds, the CLI end to end."""

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_cli import rag

pytestmark = pytest.mark.integration
SEEDS = ROOT / "seeds"
GOLD = SEEDS / "gold.jsonl"


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("seeds-index")
    done = rag("index", "--corpus", str(SEEDS), "--index", str(folder))
    assert done.returncode == 0, done.stderr
    assert "indexed 5 documents" in done.stdout
    return folder


@pytest.fixture(scope="session")
def engine(seeds_index):
    from rag.pipeline import Engine
    from rag.settings import Settings

    return Engine.load(Settings(index_dir=seeds_index, manifest_path=ROOT / "models.txt"))


def test_reindexing_unchanged_seeds_reuses_every_embedding(seeds_index):
    done = rag("index", "--corpus", str(SEEDS), "--index", str(seeds_index))
    assert done.returncode == 0 and "(0 embedded" in done.stdout


def test_an_index_without_vectors_answers_from_the_cli(tmp_path):
    folder = tmp_path / "words-only"
    done = rag("index", "--corpus", str(SEEDS), "--index", str(folder), "--no-vectors")
    assert done.returncode == 0, done.stderr
    assert "no chunk vectors" in done.stdout
    done = rag("ask", "--json", "--no-llm", "Combien de GPU H800 DeepSeek a-t-il utilisés ?", "--index", str(folder))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert not result["refused"] and ("2 000" in result["answer"] or "2000" in result["answer"])
    done = rag("index", "--corpus", str(SEEDS), "--index", str(folder))
    assert done.returncode == 0 and "no chunk vectors" in done.stdout, "a re-index keeps the index's kind"


def test_ask_json_cites_the_exact_text_of_the_file(seeds_index):
    done = rag("ask", "--json", "Combien de GPU H800 DeepSeek a-t-il utilisés ?", "--index", str(seeds_index))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) >= {"question", "answer", "citations", "passages", "refused", "timings"}
    assert set(result["timings"]) >= {"retrieve", "first_token", "total"}
    assert not result["refused"]
    assert result["citations"], result
    for citation in result["citations"]:
        text = (SEEDS / citation["source"]).read_text("utf-8")
        assert text[citation["start"]:citation["end"]] == citation["quote"]
        assert f"[{citation['n']}]" in result["answer"]
    assert "2 000" in result["answer"] or "2000" in result["answer"]
    for passage in result["passages"]:
        text = (SEEDS / passage["source"]).read_text("utf-8")
        assert text[passage["start"]:passage["end"]] == passage["text"]


def test_ask_streams_answer_then_sources(seeds_index):
    done = rag("ask", "Qui est le PDG de Y Combinator ?", "--index", str(seeds_index))
    assert done.returncode == 0, done.stderr
    assert "Garry Tan" in done.stdout and "Sources:" in done.stdout and "002_01d736431487617a.txt" in done.stdout


def test_search_json_ranks_passages(seeds_index):
    done = rag("search", "--json", "--k", "3", "Nassim Taleb cygne noir", "--index", str(seeds_index))
    hits = json.loads(done.stdout)
    assert len(hits) == 3 and hits[0]["source"] == "003_8490f98993d1fadd.txt"


def test_real_generator_answers(engine):
    import dataclasses

    from rag.pipeline import answer

    generating = dataclasses.replace(engine, settings=dataclasses.replace(engine.settings, answer_mode="generate"))
    tokens = []
    result = answer("Combien a coûté l'entraînement de R1 ?", generating, on_token=tokens.append)
    assert tokens and result.draft, "the model produced text"
    assert result.timings["first_token"] <= result.timings["total"]
    assert result.citations and not result.refused


def test_disagreeing_seeds_are_shown(engine):
    from rag.pipeline import answer

    result = answer("Combien a coûté l'entraînement de R1 ?", engine, use_llm=False)
    figures = [f for f in ("5,5 millions", "6 millions", "5,6 millions") if f in result.text]
    assert len(figures) >= 2, result.text


# Thresholds just below what retrieval achieves today (rag eval --retrieval-only): a change that
# makes retrieval worse fails here.
# Today (hybrid, USE, score fusion, 900-character chunks): hit@1 0.967, hit@3 1.0, hit@5 1.0,
# mrr 0.983, source_recall@5 0.985; English questions alone: hit@3 1.0, mrr 0.923.
RETRIEVAL_FLOOR = {"hit@1": 0.95, "hit@3": 0.98, "hit@5": 0.98, "mrr": 0.97, "source_recall@5": 0.97}
ENGLISH_FLOOR = {"hit@3": 0.9, "mrr": 0.9}


def test_retrieval_quality_on_the_gold_set(engine):
    from rag.evaluation import evaluate, read_gold

    report = evaluate(read_gold(GOLD), engine, retrieval_only=True)
    for metric, floor in RETRIEVAL_FLOOR.items():
        assert report["retrieval"][metric] >= floor, (metric, report["retrieval"])
    english = report["retrieval"]["by_language"]["en"]
    for metric, floor in ENGLISH_FLOOR.items():
        assert english[metric] >= floor, (metric, english)


# Extractive answers (no model, so deterministic) on the whole gold set, just below today's
# `rag eval --no-llm`: accuracy 0.933, citation precision 0.984 / recall 0.967, refusal accuracy
# 0.917 with false refusals 0.033. A change to evidence selection, answer kinds or the refusal
# threshold that makes answers or refusals worse fails here.
ANSWER_FLOOR = {("answers", "accuracy"): 0.9, ("citations", "precision"): 0.95, ("citations", "recall"): 0.95,
                ("refusals", "accuracy"): 0.9}
FALSE_REFUSAL_CEILING = 0.05


def test_extractive_answers_and_refusals_on_the_gold_set(engine):
    from rag.evaluation import evaluate, read_gold

    report = evaluate(read_gold(GOLD), engine, use_llm=False)
    for (group, metric), floor in ANSWER_FLOOR.items():
        assert report[group][metric] >= floor, (group, metric, report[group])
    assert report["refusals"]["false_refusal_rate"] <= FALSE_REFUSAL_CEILING, report["refusals"]


def test_gold_set_meets_its_specification():
    from rag.evaluation import read_gold
    from rag.text import detect_language

    questions = read_gold(GOLD)
    assert len(questions) >= 60
    assert len({q.id for q in questions}) == len(questions)
    assert sum(q.unanswerable for q in questions) >= 10
    assert sum(detect_language(q.question) == "en" for q in questions) >= 10
    assert sum(len(q.answers) >= 2 and len(q.sources) >= 2 and not q.unanswerable for q in questions) >= 5
    seeds = {p.name for p in SEEDS.glob("*.txt")}
    assert {s for q in questions for s in q.sources} == seeds, "every article is covered"


def test_eval_cli_with_a_gold_file_elsewhere_writes_a_report(seeds_index, tmp_path):
    gold = tmp_path / "my-gold.jsonl"
    shutil.copy(GOLD, gold)
    gold.write_text("\n".join(gold.read_text().splitlines()[:6]) + "\n")
    out = tmp_path / "r.json"
    done = rag("eval", "--gold", str(gold), "--retrieval-only", "--json", str(out), "--report", str(tmp_path / "rep"),
               "--index", str(seeds_index))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["n"] == 6 and set(report["retrieval"]) >= {"hit@1", "hit@3", "hit@5", "mrr", "source_recall@5"}
    assert (tmp_path / "rep" / "report.md").read_text().startswith("# Evaluation report")
    assert (tmp_path / "rep" / "report.png").stat().st_size > 1000


def test_full_eval_on_a_few_questions_reports_every_section(seeds_index, tmp_path):
    gold = tmp_path / "g.jsonl"
    lines = GOLD.read_text().splitlines()
    gold.write_text("\n".join(lines[:2] + lines[-1:]) + "\n")
    out = tmp_path / "r.json"
    done = rag("eval", "--gold", str(gold), "--json", str(out), "--index", str(seeds_index))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    for section in ("retrieval", "answers", "citations", "refusals", "latency", "config", "questions"):
        assert section in report
    assert report["latency"]["first_token_ms"]["p50"] is not None
