"""The informal devset builder: questions as typed into a search box, the rest of each row kept."""

import importlib.util
import json
from pathlib import Path

BUILD = Path(__file__).resolve().parents[1] / "benchmarks" / "devsets" / "informal" / "build.py"


def _module():
    spec = importlib.util.spec_from_file_location("informal_build", BUILD)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_questions_are_lower_case_without_question_mark_and_rows_are_kept(tmp_path):
    gold = tmp_path / "gold.jsonl"
    rows = [{"id": "a", "question": "Où se trouvait la porte du roi Hugon ?", "answers": ["Tours"], "unanswerable": False},
            {"id": "b", "question": "When was FICOBA created?", "answers": [], "unanswerable": True},
            {"id": "c", "question": "", "answers": ["x"]}]
    gold.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n", "utf-8")
    out = tmp_path / "out" / "informal.jsonl"
    assert _module().main([str(gold), str(out)]) == 0
    written = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [r["question"] for r in written] == ["où se trouvait la porte du roi hugon", "when was ficoba created", ""]
    assert [{k: v for k, v in r.items() if k != "question"} for r in written] == \
        [{k: v for k, v in r.items() if k != "question"} for r in rows]


def test_a_missing_gold_file_is_one_line_and_exit_2(tmp_path, capsys):
    assert _module().main([str(tmp_path / "none.jsonl"), str(tmp_path / "out.jsonl")]) == 2
    assert capsys.readouterr().err.count("\n") == 1
