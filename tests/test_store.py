import gzip
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


def test_vectors_are_stored_as_float16_and_read_as_float32(built):
    settings, _ = built
    folder = store.current_folder(settings.index_dir)
    assert np.load(folder / "vectors.npy").dtype == np.float16
    assert np.load(folder / "bridge.npy").dtype == np.float16
    assert not (folder / "dense.faiss").exists(), "the exact index is made from vectors.npy at load"
    index = store.load(settings.index_dir)
    assert index.vectors.dtype == index.bridge.vectors.dtype == np.float32
    exact = FakeEmbedder().embed([c.text for c in index.chunks])
    assert np.abs(index.vectors - exact).max() < 1e-3
    assert np.abs(index.bridge.vectors - FakeEmbedder().embed(index.bridge.surfaces)).max() < 1e-3


def test_the_loaded_index_searches_as_the_float32_vectors_do(built):
    settings, _ = built
    index = store.load(settings.index_dir)
    exact = FakeEmbedder().embed([c.text for c in index.chunks])
    queries = FakeEmbedder().embed(["croissant au beurre", "pain de campagne", "horaires de la boulangerie"])
    scores, ids = index.dense.search(queries, len(index.chunks))
    for query, row_scores, row_ids in zip(queries, scores, ids):
        expected = exact @ query
        assert np.allclose(row_scores, expected[row_ids], atol=1e-3)  # each chunk's score, within float16
        assert np.allclose(row_scores, np.sort(expected)[::-1], atol=1e-3)  # and the same order, ties aside


def test_vectors_float16_cannot_hold_stay_float32():
    assert store._compact(np.ones((2, 3))).dtype == np.float16
    assert store._compact(np.full((2, 3), 1e6)).dtype == np.float32


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


def test_an_index_without_chunk_vectors_is_searched_by_its_words(settings):
    """`rag index --no-vectors`: no chunk is embedded (the vocabulary bridge still is), the index
    loads without a dense index, and a search finds by words and sub-words."""
    from rag.retrieval import RetrievalConfig, Retriever

    embedder = FakeEmbedder()
    documents = load_corpus(settings.corpus_dir)
    report = store.build(settings.index_dir, documents, embedder, settings.chunk_chars, vectors=False)
    assert report.embedded == report.reused == 0
    chunk_texts = {c.text for c in store.load(settings.index_dir).chunks}
    assert embedder.texts and not chunk_texts & set(embedder.texts), "only vocabulary words were embedded"
    index = store.load(settings.index_dir)
    assert index.dense is None and index.manifest["faiss"] == {"type": "none"}
    assert index.vectors.shape == (len(index.chunks), 0)
    assert not store.has_vectors(settings.index_dir)
    for mode in ("hybrid", "dense"):
        hits = Retriever(index, FakeEmbedder(), RetrievalConfig(mode)).search("Combien de commerçants au marché de la Croix-Rousse ?", 3)
        assert hits and "Croix-Rousse" in hits[0].chunk.text
        assert all(h.dense_rank is None for h in hits)


def test_a_rebuild_keeps_what_the_index_has_unless_told(settings):
    """A re-index after a change (or an upload, or --watch) must not embed a large folder whose
    user chose an index without vectors, nor drop the vectors of one that has them."""
    documents = load_corpus(settings.corpus_dir)
    store.build(settings.index_dir, documents, FakeEmbedder(), settings.chunk_chars, vectors=False)
    again = FakeEmbedder()
    report = store.build(settings.index_dir, documents, again, settings.chunk_chars)
    assert not store.has_vectors(settings.index_dir) and report.embedded == 0
    assert again.texts == [], "the vocabulary words' vectors are reused too"
    report = store.build(settings.index_dir, documents, FakeEmbedder(), settings.chunk_chars, vectors=True)
    assert store.has_vectors(settings.index_dir) and report.embedded == report.chunks, "no empty vector is reused"
    report = store.build(settings.index_dir, documents, FakeEmbedder(), settings.chunk_chars)
    assert store.has_vectors(settings.index_dir) and report.reused == report.chunks


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


@pytest.mark.parametrize("damage", ["chunks.jsonl.gz", "vectors.npy", "bridge.npy", "lexical/bm25.npz"])
def test_damaged_index_is_reported(built, damage):
    settings, _ = built
    folder = store.current_folder(settings.index_dir)
    (folder / damage).write_bytes(b"\x00garbage")
    with pytest.raises(IndexMismatch, match="rebuild"):
        store.load(settings.index_dir)


@pytest.mark.parametrize("name", ["lexical/bm25.npz", "subwords/bm25.npz"])
def test_a_bm25_file_whose_hash_matches_but_whose_matrix_does_not_is_reported(built, name):
    """Written so by a faulty build rather than damaged since: the checks of the file itself catch it."""
    settings, _ = built
    folder = store.current_folder(settings.index_dir)
    with np.load(folder / name) as stored:
        arrays = {key: stored[key] for key in stored.files}
    arrays["gaps"] = arrays["gaps"][:, :-1]  # one chunk number short
    np.savez_compressed(folder / name, **arrays)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"][name] = {"size": (folder / name).stat().st_size, "sha256": store._sha256(folder / name)}
    manifest["checksum"] = store._manifest_checksum(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    message = r"is damaged \(ValueError: BM25 terms and matrix differ in size\); rebuild it with: rag index$"
    with pytest.raises(IndexMismatch, match=message):
        store.load(settings.index_dir)


def test_other_format_version_is_refused(built):
    settings, _ = built
    manifest_file = store.current_folder(settings.index_dir) / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["version"] = 999
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch, match="v999"):
        store.load(settings.index_dir)


def make_version(folder, version: int, float32: bool = True) -> None:
    """Turn a build into one of an older format version (a sound one: its checksums match)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    if float32:  # as format 4 stored them: float32 vectors, plain JSON-lines records
        for name in ("vectors.npy", "bridge.npy"):
            np.save(folder / name, np.load(folder / name).astype(np.float32))
            manifest["files"][name] = {"size": (folder / name).stat().st_size, "sha256": store._sha256(folder / name)}
        for name in (store.DOCUMENTS, store.CHUNKS):
            plain = folder / name.removesuffix(".gz")
            plain.write_bytes(gzip.decompress((folder / name).read_bytes()))
            (folder / name).unlink()
            del manifest["files"][name]
            manifest["files"][plain.name] = {"size": plain.stat().st_size, "sha256": store._sha256(plain)}
    manifest["version"] = version
    manifest["checksum"] = store._manifest_checksum(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_an_index_of_the_previous_format_asks_for_a_rebuild(built):
    settings, _ = built
    make_version(store.current_folder(settings.index_dir), 6, float32=False)
    with pytest.raises(IndexMismatch, match=r"v6, this program reads rag-index v9; rebuild it with: rag index$"):
        store.load(settings.index_dir)


@pytest.mark.parametrize("version", [4, 5, 6, 7])
def test_rebuilding_an_index_of_the_previous_format_reuses_its_vectors_and_documents(built, version):
    settings, _ = built
    make_version(store.current_folder(settings.index_dir), version, float32=version == 4)
    assert store.previous_documents(settings.index_dir)
    embedder = FakeEmbedder()
    report = store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    assert report.embedded == 0 and report.reused == report.chunks and embedder.texts == []
    index = store.load(settings.index_dir)
    assert index.manifest["version"] == store.FORMAT_VERSION
    assert np.load(index.folder / "vectors.npy").dtype == np.float16


def test_an_older_format_is_not_reused(built):
    settings, _ = built
    make_version(store.current_folder(settings.index_dir), 3)
    assert store.previous_documents(settings.index_dir) == {}
    embedder = FakeEmbedder()
    report = store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    assert report.reused == 0 and report.embedded == report.chunks


def test_other_embedder_is_refused(built):
    settings, _ = built
    with pytest.raises(IndexMismatch, match="rag index --embedder"):
        store.load(settings.index_dir, expected_embedder="use-multilingual")


def test_large_corpora_get_an_approximate_index(tmp_path, monkeypatch):
    import faiss

    monkeypatch.setattr(store, "EXACT_SEARCH_LIMIT", 10)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((400, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    info = store._write_faiss(tmp_path / "x.faiss", vectors)
    assert info["type"] == "hnsw-ip" and info["vectors"] == "vectors.npy"
    index = store._read_faiss(tmp_path / "x.faiss", info, vectors)
    whole = faiss.IndexHNSWFlat(32, 32, faiss.METRIC_INNER_PRODUCT)  # graph and vectors written together
    whole.hnsw.efConstruction, whole.hnsw.efSearch = 80, 96
    whole.add(vectors)
    faiss.write_index(whole, str(tmp_path / "whole.faiss"))
    graph, both = (tmp_path / "x.faiss").stat().st_size, (tmp_path / "whole.faiss").stat().st_size
    assert graph <= both - vectors.nbytes, "the graph only: its vectors are those of vectors.npy"
    queries = vectors[:50] + 0.3 * rng.standard_normal((50, 32)).astype(np.float32)
    assert np.array_equal(index.search(queries, 10)[1], whole.search(queries, 10)[1])
    with pytest.raises(ValueError, match="HNSW graph"):
        store._read_faiss(tmp_path / "x.faiss", info, vectors[:10])


def test_small_corpora_get_no_faiss_file(tmp_path):
    assert store._write_faiss(tmp_path / "x.faiss", np.eye(16, 8, dtype=np.float32)) == {"type": "flat-ip"}
    assert not (tmp_path / "x.faiss").exists()


def test_an_index_with_an_approximate_index_loads_it(settings, monkeypatch):
    monkeypatch.setattr(store, "EXACT_SEARCH_LIMIT", 1)
    store.build(settings.index_dir, load_corpus(settings.corpus_dir), FakeEmbedder(), settings.chunk_chars)
    index = store.load(settings.index_dir)
    assert index.manifest["faiss"]["type"] == "hnsw-ip" and "dense.faiss" in index.manifest["files"]
    assert index.dense.ntotal == len(index.chunks) > 1
    assert index.dense.search(index.vectors, 1)[1].ravel().tolist() == list(range(len(index.chunks)))
    (index.folder / "dense.faiss").write_bytes(b"\x00garbage")
    with pytest.raises(IndexMismatch, match=r"damaged \(dense\.faiss .*rag index"):
        store.load(settings.index_dir)
