import json

import numpy as np
import pytest

from rag import store
from rag.documents import load_corpus
from rag.errors import IndexMismatch, IndexNotFound
from tests.conftest import FakeEmbedder


def test_build_then_load_round_trips(built):
    settings, _ = built
    index = store.load(settings.index_dir)
    assert index.manifest["version"] == store.FORMAT_VERSION
    assert index.manifest["embedder"] == {"name": "fake-embedder", "dim": 64}
    assert index.manifest["faiss"]["type"] == "flat-ip"
    assert {d["name"] for d in index.manifest["documents"]} == {"alpha.txt", "beta.md"}
    assert all(len(d["sha256"]) == 64 for d in index.manifest["documents"])
    assert index.dense.ntotal == len(index.chunks) == index.vectors.shape[0]
    assert not list(settings.index_dir.glob("**/*.pkl"))


def test_rebuild_reuses_embeddings_of_unchanged_chunks(built):
    settings, _ = built
    embedder = FakeEmbedder()
    report = store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    assert report.embedded == 0 and report.reused == report.chunks
    assert embedder.texts == [], "nothing is embedded again, not even vocabulary words"
    (settings.corpus_dir / "gamma.txt").write_text("Un nouveau document sur les croissants.")
    report = store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    assert report.embedded == 1
    # the new chunk, then only the words the corpus did not have before
    assert embedder.texts[0] == "Un nouveau document sur les croissants."
    assert sorted(embedder.texts[1:]) == ["croissants", "document"]  # "nouveau" was already there


def test_failed_build_leaves_previous_index_usable(built):
    settings, _ = built
    before = store.load(settings.index_dir)

    class Exploding(FakeEmbedder):
        def embed(self, texts):
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-build

    (settings.corpus_dir / "gamma.txt").write_text("Texte neuf qui demande un calcul.")
    with pytest.raises(KeyboardInterrupt):
        store.build(settings.index_dir, load_corpus(settings.corpus_dir), Exploding(), settings.chunk_chars)
    after = store.load(settings.index_dir)
    assert after.folder == before.folder and len(after.chunks) == len(before.chunks)


def test_failure_while_writing_leaves_previous_index(built, monkeypatch):
    settings, _ = built
    before = store.load(settings.index_dir)
    monkeypatch.setattr(store, "_write_faiss", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        store.build(settings.index_dir, load_corpus(settings.corpus_dir), FakeEmbedder(), 200)
    assert store.load(settings.index_dir).folder == before.folder
    assert not [p for p in settings.index_dir.iterdir() if p.name.endswith(".tmp")]


def test_missing_index_says_how_to_build_it(tmp_path):
    with pytest.raises(IndexNotFound, match="rag index"):
        store.load(tmp_path / "nothing")


@pytest.mark.parametrize("damage", ["chunks.jsonl", "dense.faiss", "vectors.npy"])
def test_damaged_index_is_reported(built, damage):
    settings, _ = built
    folder = store.current_folder(settings.index_dir)
    (folder / damage).write_bytes(b"\x00garbage")
    with pytest.raises(IndexMismatch, match="rebuild"):
        store.load(settings.index_dir)


def test_other_format_version_is_refused(built):
    settings, _ = built
    manifest_file = store.current_folder(settings.index_dir) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["version"] = 999
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="v999"):
        store.load(settings.index_dir)


def test_other_embedder_is_refused(built):
    settings, _ = built
    with pytest.raises(IndexMismatch, match="rag index --embedder"):
        store.load(settings.index_dir, expected_embedder="use-multilingual")


def test_large_corpora_get_an_approximate_index(tmp_path, monkeypatch):
    monkeypatch.setattr(store, "EXACT_SEARCH_LIMIT", 10)
    info = store._write_faiss(tmp_path / "x.faiss", np.eye(16, 8, dtype=np.float32))
    assert info["type"] == "hnsw-ip"
