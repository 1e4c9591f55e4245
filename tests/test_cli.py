"""The `rag` command through a real subprocess: bad input gets one line and an exit code."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def rag(*args, cwd=ROOT, env=None, timeout=120):
    full_env = {**os.environ, **(env or {})}
    full_env.pop("RAG_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


def assert_one_line_error(done, code, *words):
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) <= 3, done.stderr  # click usage errors add a 'Usage:' and a hint line
    for word in words:
        assert word in done.stderr, done.stderr


def test_help_lists_the_commands():
    done = rag("--help")
    assert done.returncode == 0
    for command in ("ask", "search", "index", "models", "eval"):
        assert command in done.stdout


@pytest.mark.parametrize("question", ["", "   ", "x" * 100_000])
def test_empty_or_huge_question_is_a_usage_error(question, tmp_path):
    done = rag("ask", question, "--index", str(tmp_path))
    assert_one_line_error(done, 2, "question")


def test_out_of_range_option_is_a_usage_error(tmp_path):
    assert_one_line_error(rag("search", "GPU", "--k", "0", "--index", str(tmp_path)), 2, "k must be")


def test_no_index_yet(tmp_path):
    assert_one_line_error(rag("ask", "Combien ?", "--index", str(tmp_path / "none")), 1, "rag index")


def test_missing_and_binary_corpus(tmp_path):
    assert_one_line_error(rag("index", "--corpus", str(tmp_path / "none"), "--index", str(tmp_path / "i")), 1, "does not exist")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.txt").write_bytes(b"\xff\xfe\x00\x00binary")
    assert_one_line_error(rag("index", "--corpus", str(bad), "--index", str(tmp_path / "i")), 1, "notes.txt")


def test_damaged_index_keeps_its_files_and_says_rebuild(built):
    settings, _ = built
    from rag import store

    folder = store.current_folder(settings.index_dir)
    (folder / "chunks.jsonl.gz").write_text("{not json")
    done = rag("search", "boulangerie", "--index", str(settings.index_dir))
    assert_one_line_error(done, 1, "damaged", "rag index")
    assert (folder / "vectors.npy").exists()


def test_missing_model_says_how_to_fetch_it(tmp_path, corpus):
    manifest = tmp_path / "models.txt"
    from rag.settings import DEFAULT_EMBEDDER

    manifest.write_text(f"embedder {DEFAULT_EMBEDDER} missing/folder loader=use\n")
    done = rag("--models", str(manifest), "index", "--corpus", str(corpus), "--index", str(tmp_path / "i"))
    assert_one_line_error(done, 1, f"rag models fetch {DEFAULT_EMBEDDER}")
    assert not (tmp_path / "i").exists()


def test_wrong_checksum_is_reported(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"not really a model")
    manifest = tmp_path / "models.txt"
    manifest.write_text(f"generator g {tmp_path / 'm.gguf'} sha256={'0' * 64}\n")
    done = rag("--models", str(manifest), "models")
    assert done.returncode == 0 and "checksum wrong" in done.stdout


def test_indexing_a_large_folder_says_that_an_index_without_vectors_exists(tmp_path, monkeypatch):
    """Before embedding many chunks (hours on a laptop), `rag index` names --no-vectors; not when
    the user chose either kind, and not for a small folder."""
    from click.testing import CliRunner

    from rag import cli, pipeline
    from tests.conftest import FakeEmbedder

    monkeypatch.setattr(pipeline, "load_configured_embedder", lambda settings, name=None: FakeEmbedder())
    corpus = ROOT / "tests" / "fixtures" / "corpus"

    def index(*flags, large=2):
        monkeypatch.setattr(cli, "LARGE_FOLDER_CHUNKS", large)
        folder = tmp_path / f"index-{len(list(tmp_path.iterdir()))}"
        return CliRunner().invoke(cli.cli, ["index", "--corpus", str(corpus), "--index", str(folder), *flags])

    done = index()
    assert done.exit_code == 0, done.output
    assert "--no-vectors" in done.output and "embedded" in done.output
    for quiet in (index("--vectors"), index("--no-vectors"), index(large=10_000)):
        assert quiet.exit_code == 0, quiet.output
        assert "rag index --no-vectors" not in quiet.output


def test_search_explain_shows_every_list_a_passage_ranks_in(capsys):
    """The word, sub-word and dense ranks of each passage; '-' for a list it is not in (the dense
    list of an index built with --no-vectors)."""
    from rag.chunking import Chunk
    from rag.render import print_hits
    from rag.retrieval import Hit

    chunk = Chunk("c", "notes.txt", 0, 20, 1, "La mairie ouvre à 9h.", "fr")
    print_hits([Hit(chunk, 1, 2.0, 1, 7.5, None, None, 3, 1.25)], explain=True)
    out = capsys.readouterr().out
    assert "lexical #1 (7.500) · sub-words #3 (1.250) · dense - · fused 2.0000" in out
