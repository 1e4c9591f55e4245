"""The warm process behind `rag ask` (rag/warm.py): it answers exactly as the command would in its
own process, reloads a rebuilt index, survives garbage, exits when idle, and is never used from a
folder other users may enter. Fast tests run the server in a thread over fakes; the integration
test starts the real process through the real command."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rag import store, warm
from rag.documents import load_corpus
from rag.pipeline import Engine, answer
from rag.render import answer_json, answer_lines, json_text
from rag.retrieval import RetrievalConfig, Retriever
from tests.conftest import ROOT, FakeEmbedder, FakeGenerator

QUESTION = "Combien de personnes emploie la boulangerie Martin ?"


@pytest.fixture
def warm_folder(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "warm"
    monkeypatch.setenv("RAG_WARM_DIR", str(folder))
    return folder


class Loader:
    """Engine.load over the fakes: the index from disk, one embedder and generator kept."""

    def __init__(self, generator: FakeGenerator | None = None):
        self.embedder, self.generator, self.loads = FakeEmbedder(), generator or FakeGenerator(), 0

    def __call__(self, settings, generator=None, embedder=None) -> Engine:
        self.loads += 1
        index = store.load(settings.index_dir)
        return Engine(settings, index, self.embedder, Retriever(index, self.embedder, RetrievalConfig(settings.retrieval)),
                      generator or self.generator)


def start_server(settings, loader) -> tuple[warm.WarmServer, threading.Thread]:
    folder = warm.private_dir(warm.warm_dir())
    server = warm.WarmServer(settings, folder / f"{warm.key(settings)}.sock", load=loader)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    for _ in range(200):
        if server.path.exists():
            break
        time.sleep(0.01)
    return server, thread


def without_timings(lines: list[str]) -> list[str]:
    return [line for line in lines if "first token" not in line]


def test_answers_exactly_as_in_process(built, warm_folder):
    settings, _ = built
    settings = settings.with_overrides(use_llm=False)
    loader = Loader()
    server, thread = start_server(settings, loader)
    reply = warm.ask(settings, QUESTION, False, lambda piece: None)
    engine = loader(settings)
    local = answer(QUESTION, engine)
    assert reply is not None and "lines" in reply
    assert without_timings(reply["lines"]) == without_timings(answer_lines(local, ""))
    assert "Sources:" in "\n".join(reply["lines"])
    as_json = json.loads(warm.ask(settings, QUESTION, True, lambda piece: None)["json"])
    expected = json.loads(json_text(answer_json(local, engine.compute)))
    for record in (as_json, expected):
        record.pop("timings")
    assert as_json == expected
    warm.stop(server.path)
    thread.join(5)
    assert not thread.is_alive() and not server.path.exists()
    assert server.answered == 2  # (counted once the reply is sent: read after the server stopped)


def test_per_question_flags_and_the_streamed_draft(built, warm_folder):
    settings, _ = built
    generator = FakeGenerator("La boulangerie Martin emploie 12 personnes.")
    server, thread = start_server(settings.with_overrides(use_llm=False), Loader(generator))
    tokens: list[str] = []
    asked = settings.with_overrides(answer_mode="generate", k=3)  # same key: taken per question
    assert warm.key(asked) == warm.key(settings)
    reply = warm.ask(asked, QUESTION, False, tokens.append)
    assert "".join(tokens).strip() == "La boulangerie Martin emploie 12 personnes."
    assert reply["lines"][0].startswith("\n") and "checked" in reply["lines"][0]
    assert "Martin" in generator.prompts[-1]
    warm.stop(server.path)
    thread.join(5)


def test_a_rebuilt_index_is_loaded_before_the_next_answer(built, warm_folder, tmp_path):
    settings, embedder = built
    settings = settings.with_overrides(use_llm=False)
    loader = Loader()
    server, thread = start_server(settings, loader)
    first = warm.ask(settings, "Quel est le nom du chat du gardien ?", False, lambda piece: None)
    other = tmp_path / "other"
    other.mkdir()
    (other / "chat.txt").write_text("Le chat du gardien du musée s'appelle Grisou depuis 2019.\n", "utf-8")
    store.build(settings.index_dir, load_corpus(other), embedder, settings.chunk_chars)
    second = warm.ask(settings, "Quel est le nom du chat du gardien ?", False, lambda piece: None)
    assert "Grisou" not in "\n".join(first["lines"])
    assert "Grisou" in "\n".join(second["lines"]) and loader.loads == 2
    warm.stop(server.path)
    thread.join(5)


def test_errors_come_back_with_their_exit_code_and_garbage_is_survived(built, warm_folder):
    settings, _ = built
    settings = settings.with_overrides(use_llm=False)
    server, thread = start_server(settings, Loader())
    for garbage in (b"not json\n", b"{\"protocol\": 99}\n", b"x" * (warm.MAX_REQUEST + 10), b""):
        with socket.socket(socket.AF_UNIX) as connection, contextlib.suppress(OSError):
            connection.connect(str(server.path))
            connection.sendall(garbage)
            connection.shutdown(socket.SHUT_WR)
            connection.recv(4096)
    with pytest.raises(warm.WarmError) as raised:
        warm.ask(settings, "   ", False, lambda piece: None)  # the server checks too
    assert raised.value.exit_code == 2 and "empty" in str(raised.value)
    assert warm.ask(settings, QUESTION, False, lambda piece: None) is not None
    warm.stop(server.path)
    thread.join(5)


def test_exits_when_idle(built, warm_folder):
    settings, _ = built
    server, thread = start_server(settings.with_overrides(use_llm=False, warm_idle=1.0), Loader())
    thread.join(10)
    assert not thread.is_alive() and not server.path.exists()


def test_a_folder_others_may_enter_is_not_used(built, tmp_path, monkeypatch):
    settings, _ = built
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("RAG_WARM_DIR", str(shared))
    assert warm.private_dir(shared) is None
    assert warm.ask(settings, QUESTION, False, lambda piece: None) is None  # answered in process instead
    assert not list(shared.iterdir())


def test_no_index_is_answered_in_process(built, warm_folder, tmp_path):
    settings, _ = built
    assert warm.ask(settings.with_overrides(index_dir=tmp_path / "none"), QUESTION, False, print) is None
    assert not list(warm_folder.glob("*.sock"))


def test_key_changes_with_what_is_loaded(built):
    settings, _ = built
    assert warm.key(settings) == warm.key(settings.with_overrides(temperature=0.7, retrieval="lexical", use_llm=False))
    assert warm.key(settings) != warm.key(settings.with_overrides(generator="smollm2-135m"))
    assert warm.key(settings) != warm.key(settings.with_overrides(index_dir=settings.index_dir / "x"))
    assert warm.settings_from(warm.settings_dict(settings)) == settings.with_overrides(
        **{name: getattr(settings, name).resolve() for name in ("corpus_dir", "index_dir", "collections_dir",
                                                              "manifest_path", "models_dir")})


@pytest.mark.integration
def test_the_real_command_starts_and_reuses_a_warm_process(tmp_path):
    """`rag ask` twice: the first starts the warm process, the second is answered by it, both
    print what the command prints in its own process."""
    env = {**os.environ, "RAG_WARM_DIR": str(tmp_path / "warm"), "RAG_WARM": "1", "RAG_WARM_IDLE": "120"}
    env.pop("RAG_DEBUG", None)
    index = tmp_path / "index"
    subprocess.run([sys.executable, "-m", "rag", "index", "--corpus", str(ROOT / "seeds"), "--index", str(index)],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)

    def rag(*args, **extra):
        return subprocess.run([sys.executable, "-m", "rag", *args], cwd=ROOT, env={**env, **extra},
                              capture_output=True, text=True, timeout=600)

    question = "Combien de GPU H800 DeepSeek a-t-il utilisés ?"
    try:
        first = rag("ask", question, "--index", str(index))
        second = rag("ask", question, "--index", str(index))
        local = rag("ask", question, "--index", str(index), RAG_WARM="0")
        status = rag("warm")
        assert first.returncode == second.returncode == local.returncode == 0, first.stderr + second.stderr
        for done in (first, second):
            assert without_timings(done.stdout.splitlines()) == without_timings(local.stdout.splitlines())
            assert "Traceback" not in done.stderr
        assert "2 answered" in status.stdout, status.stdout
    finally:
        stopped = rag("warm", "stop")
    assert "stopped 1 warm process" in stopped.stdout
    assert "no warm process" in rag("warm").stdout
