"""Collections, the ingestion report, the build lock and --watch, through the library and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from rag import store
from rag.collections import check_name, list_collections, locate
from rag.documents import load_corpus
from rag.errors import IndexBusy, UsageError
from rag.indexing import index_collection
from tests.conftest import ROOT, FakeEmbedder
from tests.test_cli import assert_one_line_error, rag


def test_a_collection_remembers_its_folder(tmp_path, corpus):
    collection = locate("notes", tmp_path / "index", tmp_path / "collections")
    assert collection.index_dir == tmp_path / "collections" / "notes" and not collection.built
    done = index_collection(collection, corpus, FakeEmbedder(), 900)
    assert done.collection.corpus_dir == corpus.resolve()
    again = locate("notes", tmp_path / "index", tmp_path / "collections")
    assert again.built and again.corpus_dir == corpus.resolve()
    assert [c.name for c in list_collections(tmp_path / "index", tmp_path / "collections")] == ["notes"]


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 64, "é"])
def test_collection_names_cannot_escape_their_folder(name):
    with pytest.raises(UsageError):
        check_name(name)


def test_a_second_build_on_the_same_index_is_refused_not_interleaved(built):
    from filelock import FileLock

    settings, _ = built
    with FileLock(settings.index_dir / ".build.lock"):
        with pytest.raises(IndexBusy, match="another index build is running"):
            store.build(settings.index_dir, load_corpus(settings.corpus_dir), FakeEmbedder(), 900)
    store.build(settings.index_dir, load_corpus(settings.corpus_dir), FakeEmbedder(), 900)  # free again


def test_an_unfinished_build_folder_is_cleaned_by_the_next_build(built):
    settings, _ = built
    leftover = settings.index_dir / "build-20250101-000000-dead.tmp"
    leftover.mkdir()
    (leftover / "vectors.npy").write_bytes(b"x" * 1000)
    store.build(settings.index_dir, load_corpus(settings.corpus_dir), FakeEmbedder(), 900)
    assert not leftover.exists()


def test_the_index_stores_the_extracted_text_and_quotes_come_from_it(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "guide.md").write_text("# Installation\n\nLancez **install.sh** puis [ouvrez](http://x) la page.\n")
    store.build(tmp_path / "i", load_corpus(tmp_path / "c"), FakeEmbedder(), 900)
    index = store.load(tmp_path / "i")
    document = index.texts["guide.md"]
    assert "**" not in document.text and "http://x" not in document.text
    assert document.headings and document.headings[0][1] == "Installation"
    for chunk in index.chunks:
        assert document.text[chunk.start:chunk.end] == chunk.text


def test_cli_reports_what_it_read_and_what_it_skipped(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.txt").write_text("La réunion a lieu le mardi à 14 heures dans la salle Verte.\n")
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 not text")
    (folder / "vide.md").write_text("\n\n")
    done = rag("index", "--corpus", str(folder), "--index", str(tmp_path / "i"))
    assert done.returncode == 0, done.stderr
    assert "read 1 documents (1 TXT)" in done.stdout and "documents/s" in done.stdout
    assert "skipped 2 files" in done.stderr
    assert "photo.jpg: unsupported format (.jpg)" in done.stderr and "vide.md: no text" in done.stderr
    strict = rag("index", "--corpus", str(folder), "--index", str(tmp_path / "j"), "--strict")
    assert_one_line_error(strict, 1, "photo.jpg", "unsupported format")


def test_cli_collections_index_ask_and_list(tmp_path, corpus):
    env = {"RAG_COLLECTIONS_DIR": str(tmp_path / "cols")}
    new = rag("index", "--collection", "bakery", env=env)
    assert_one_line_error(new, 2, "--corpus")
    done = rag("index", "--collection", "bakery", "--corpus", str(corpus), env=env)
    assert done.returncode == 0, done.stderr
    assert "(collection bakery)" in done.stdout
    again = rag("index", "--collection", "bakery", env=env)  # the folder is remembered
    assert again.returncode == 0 and "(0 embedded" in again.stdout and "2 unchanged" in again.stdout
    listed = rag("collections", "--index", str(tmp_path / "none"), env=env)
    assert "bakery" in listed.stdout and str(corpus.resolve()) in listed.stdout
    asked = rag("ask", "--json", "--no-llm", "--collection", "bakery",
                "Combien de personnes emploie la boulangerie Martin ?", env=env)
    assert asked.returncode == 0, asked.stderr
    result = json.loads(asked.stdout)
    assert result["citations"] and result["citations"][0]["source"] == "alpha.txt"
    assert "words only" not in listed.stdout
    words = rag("index", "--collection", "bakery", "--no-vectors", env=env)
    assert words.returncode == 0 and "no chunk vectors" in words.stdout, words.stderr
    assert "2 documents, words only" in rag("collections", "--index", str(tmp_path / "none"), env=env).stdout


@pytest.mark.parametrize("inside", [False, True], ids=["index-elsewhere", "index-inside-the-folder"])
def test_cli_watch_follows_added_changed_and_deleted_files(tmp_path, corpus, inside):
    import queue
    import threading

    index = corpus / "index" if inside else tmp_path / "i"
    process = subprocess.Popen(
        [sys.executable, "-m", "rag", "index", "--watch", "--corpus", str(corpus), "--index", str(index)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    seen: list[str] = []

    def wait_for(word: str) -> str:
        deadline = time.monotonic() + 120
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {word!r} line in 120 s: {''.join(seen)}") from None
            seen.append(line)
            if word in line:
                return line

    try:
        wait_for("watching")
        time.sleep(2)  # the watcher starts right after saying so
        (corpus / "gamma.txt").write_text("Le fournil de la rue Neuve ouvre à six heures.\n")
        assert "indexed 3 documents" in wait_for("indexed")
        (corpus / "gamma.txt").unlink()
        assert "indexed 2 documents" in wait_for("indexed")
        time.sleep(3)  # writing the index is no change of the folder: no rebuild follows
        assert lines.empty(), [lines.get() for _ in range(lines.qsize())]
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert {d["name"] for d in store.load_manifest(index)["documents"]} == {"alpha.txt", "beta.md"}


def test_an_index_inside_its_own_corpus_is_not_read_as_documents(tmp_path, corpus):
    from rag.collections import Collection

    inside = Collection("default", corpus / "index", None)
    index_collection(inside, corpus, FakeEmbedder(), 900)
    again = index_collection(inside, corpus, FakeEmbedder(), 900)
    assert [d.name for d in again.corpus.documents] == ["alpha.txt", "beta.md"]
    assert not again.corpus.skipped and again.build.embedded == 0
