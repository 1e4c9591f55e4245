import json
import shutil

import numpy as np
import pytest

from rag import store
from rag.chunking import Chunk
from rag.documents import load_corpus
from rag import lexical
from rag.lexical import LexicalIndex, subword_weights, subwords
from rag.text import analyze, words
from rag.retrieval import RetrievalConfig, Retriever, fuse
from conftest import FakeEmbedder  # tests/ is on sys.path under pytest (rootdir conftest)


def _chunks(n):
    return [Chunk(str(i), "f.txt", i * 10, i * 10 + 9, i + 1, f"texte numéro {i}") for i in range(n)]


def test_rrf_rewards_agreement_between_lists():
    chunks = _chunks(4)
    lexical = [(0, 9.0), (1, 5.0), (2, 1.0)]
    dense = [(1, 0.9), (3, 0.8), (0, 0.1)]
    hits = fuse(chunks, lexical, dense, RetrievalConfig(fusion="rrf", rrf_k=60), k=4)
    assert [h.chunk.id for h in hits[:2]] == ["1", "0"]
    assert hits[0].lexical_rank == 2 and hits[0].dense_rank == 1
    assert hits[2].chunk.id == "3" and hits[2].lexical_rank is None and hits[2].dense_rank == 2


def test_overlapping_and_repeated_chunks_are_removed():
    chunks = [Chunk("a", "f.txt", 0, 50, 1, "Même texte"), Chunk("b", "f.txt", 40, 90, 2, "Autre"),
              Chunk("c", "g.txt", 0, 10, 1, "même  texte"), Chunk("d", "g.txt", 20, 30, 2, "Encore")]
    hits = fuse(chunks, [(0, 3.0), (1, 2.0), (2, 1.5), (3, 1.0)], [], RetrievalConfig(), k=4)
    assert [h.chunk.id for h in hits] == ["a", "d"]


def test_lexical_search_finds_numbers_written_differently(built):
    settings, embedder = built
    retriever = Retriever(store.load(settings.index_dir), embedder, RetrievalConfig("lexical"))
    hits = retriever.search("Combien de baguettes ? 2000", k=2)
    # "2 000 baguettes" in one file and "2.000 baguettes" in the other both match "2000"
    assert {h.chunk.source for h in hits} == {"alpha.txt", "beta.md"}
    assert all("2000" in words(h.chunk.text, "fr") for h in hits)


def test_hybrid_reports_every_retrievers_rank(built):
    settings, embedder = built
    retriever = Retriever(store.load(settings.index_dir), embedder)
    hits = retriever.search("Combien de personnes emploie la boulangerie Martin ?", k=3)
    assert "12 personnes" in hits[0].chunk.text
    assert hits[0].lexical_rank is not None and hits[0].dense_rank is not None
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


def test_score_fusion_keeps_a_large_lead():
    chunks = _chunks(4)
    lexical = [(0, 4.2), (1, 0.32), (2, 0.31), (3, 0.30)]  # chunk 0 far ahead lexically
    dense = [(3, 0.50), (1, 0.45), (2, 0.44)]  # ... and not in the dense list at all
    assert fuse(chunks, lexical, dense, RetrievalConfig(fusion="rrf"), k=3)[0].chunk.id != "0"
    assert fuse(chunks, lexical, dense, RetrievalConfig(fusion="score"), k=3)[0].chunk.id == "0"


def test_subwords_find_words_glued_by_a_lost_space():
    texts = ["Votreaccord préalableest nécessaire avant tout envoi.", "Un courrier postal ne demande rien."]
    assert LexicalIndex.build(texts, ["fr"] * len(texts)).scores({"accord": 1.0}).tolist() == [0.0, 0.0]  # one word: 'votreaccord'
    scores = LexicalIndex.build(texts, ["fr"] * len(texts), analyzer=subwords).scores(subword_weights("mon accord préalable", "fr"))
    assert scores[0] > 0 and scores[1] == 0


LEXICAL_TEXTS = [
    "Les cookies sont de petits fichiers déposés par un site, et les cookies tiers par d'autres.",
    "La vidéosurveillance au travail est encadrée : le salarié est informé de la vidéosurveillance.",
    "",  # a passage without a single term
    "Un courrier postal part sans formalité particulière ; un courrier recommandé aussi.",
    "The data controller answers a subject access request within one month.",
]


def _bm25_texts():
    return LEXICAL_TEXTS * 60 + ["Le zythum, une bière d'Égypte."]  # a term first seen in chunk 300


@pytest.mark.parametrize("analyzer", [analyze, subwords], ids=["words", "subwords"])
def test_bm25s_model_saved_compactly_loads_with_the_same_scores(tmp_path, analyzer):
    bm25s = pytest.importorskip("bm25s")
    texts = _bm25_texts()
    index = LexicalIndex.build(texts, ["fr"] * len(texts), analyzer=analyzer)
    index.save(tmp_path / "bm25")
    assert [p.name for p in (tmp_path / "bm25").iterdir()] == ["bm25.npz"]
    with np.load(tmp_path / "bm25" / "bm25.npz") as stored:  # a row for each byte of a value
        assert stored["gaps"].shape[0] == 2 and stored["scores"].shape[0] == 2  # uint16, float16
    back = LexicalIndex.load(tmp_path / "bm25")
    model = back._model
    assert isinstance(model, bm25s.BM25) and (model.k1, model.b, model.method) == (0.5, 0.75, "lucene")
    assert back.vocabulary.keys() == index.vocabulary.keys() and back.size == index.size == 301
    assert back.data.dtype == np.float32 and back.indices.dtype == np.int32 and back.indptr.dtype == np.int64
    for term, column in index.vocabulary.items():
        if column >= len(index.indptr) - 1:  # the "" bm25s adds past its matrix when no chunk is empty
            assert back.vocabulary[term] >= len(back.indptr) - 1 and not back.scores({term: 1.0}).any()
            continue
        expected = index.scores({term: 1.0})
        assert np.array_equal(back.scores({term: 1.0}) > 0, expected > 0), term  # the same chunks
        assert np.allclose(back.scores({term: 1.0}), expected, rtol=1e-3, atol=0), term  # float16 on disk
        assert np.allclose(model.get_scores([term]), expected, rtol=1e-3, atol=0), term  # bm25s's own reading
        assert back.idf(term) == index.idf(term)
    assert back.idf("\x00absent") == index.idf("\x00absent")


def test_bm25s_scores_saved_as_float32_come_back_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setattr(lexical, "SCORE_DTYPE", np.float32)
    texts = _bm25_texts()
    index = LexicalIndex.build(texts, ["fr"] * len(texts), analyzer=subwords)
    index.save(tmp_path / "bm25")
    back = LexicalIndex.load(tmp_path / "bm25")
    for term, column in back.vocabulary.items():
        assert back.scores({term: 1.0}).tolist() == index.scores({term: 1.0}).tolist(), term


def test_bm25_scores_float16_cannot_hold_are_saved_as_float32(tmp_path):
    index = LexicalIndex.build(LEXICAL_TEXTS, ["fr"] * len(LEXICAL_TEXTS))
    index._model.scores["data"] = index.data * 1e5  # past float16's 65 504
    index.save(tmp_path / "bm25")
    back = LexicalIndex.load(tmp_path / "bm25")
    assert back.scores({"cook": 1.0}).tolist() == index.scores({"cook": 1.0}).tolist() != [0.0] * 5


def _resave(path, **changes):
    with np.load(path) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays.update(changes)
    np.savez_compressed(path, **arrays)


@pytest.mark.parametrize("damage", ["chunk past the corpus", "fewer terms", "postings", "score width", "not a number",
                                    "params", "not a zip"])
def test_a_damaged_bm25_file_is_a_value_error(tmp_path, damage):
    texts = _bm25_texts()
    LexicalIndex.build(texts, ["fr"] * len(texts)).save(tmp_path / "bm25")
    path = tmp_path / "bm25" / "bm25.npz"
    with np.load(path) as stored:
        terms, params = (json.loads(stored[name].tobytes()) for name in ("terms", "params"))
        df, gaps, scores = stored["df"], stored["gaps"], stored["scores"]
    as_bytes = lambda value: np.frombuffer(json.dumps(value).encode(), dtype=np.uint8)  # noqa: E731
    if damage == "chunk past the corpus":
        _resave(path, params=as_bytes({**params, "num_docs": 300}))
    elif damage == "fewer terms":
        _resave(path, terms=as_bytes(terms[: len(df) - 1]))
    elif damage == "postings":
        _resave(path, gaps=gaps[:, :-1])
    elif damage == "score width":
        _resave(path, scores=np.vstack([scores, scores[:1]]))  # 3 bytes a score
    elif damage == "not a number":
        scores = scores.copy()
        scores[:, 5] = [0x00, 0x7E]  # float16 NaN, low byte first
        _resave(path, scores=scores)
    elif damage == "params":
        _resave(path, params=as_bytes({"k1": 0.5}))
    else:
        path.write_bytes(b"\x00garbage")
    with pytest.raises(ValueError):
        LexicalIndex.load(tmp_path / "bm25")


def test_subword_list_is_fused_and_reported():
    chunks = _chunks(4)
    lexical = [(0, 3.0), (1, 2.0)]
    dense = [(1, 0.9), (0, 0.5)]
    subword = [(2, 8.0), (1, 4.0), (3, 1.0)]
    hits = fuse(chunks, lexical, dense, RetrievalConfig(), k=4, subword=subword)
    assert hits[0].chunk.id == "1"  # second, first and second: the best sum
    assert (hits[0].subword_rank, hits[0].subword_score) == (2, 4.0)
    assert {h.chunk.id: h.subword_rank for h in hits}["2"] == 1
    without = fuse(chunks, lexical, dense, RetrievalConfig(subword_weight=0.0), k=4, subword=subword)
    assert [h.chunk.id for h in without][:2] == [h.chunk.id for h in fuse(chunks, lexical, dense, RetrievalConfig(), k=2)]


def _glued_index(tmp_path):
    corpus = tmp_path / "glued"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Votreaccord préalableest nécessaire avant tout envoi publicitaire.\n", encoding="utf-8")
    (corpus / "b.txt").write_text("Un courrier postal part sans formalité.\n", encoding="utf-8")
    (corpus / "c.txt").write_text("Les cookies sont de petits fichiers.\n", encoding="utf-8")
    embedder = FakeEmbedder()
    store.build(tmp_path / "index", load_corpus(corpus), embedder, 900)
    return tmp_path / "index", embedder


def test_hybrid_search_finds_a_passage_only_sub_words_match(tmp_path):
    root, embedder = _glued_index(tmp_path)
    index = store.load(root)
    assert index.subwords is not None and index.subwords.size == len(index.chunks)
    question = "Faut-il mon accord préalable ?"  # no whole word of it is in a.txt
    found = {h.chunk.source: h for h in Retriever(index, embedder).search(question, k=3)}
    assert found["a.txt"].subword_rank == 1 and found["a.txt"].lexical_rank is None
    without = {h.chunk.source: h for h in Retriever(index, embedder, RetrievalConfig(subword_weight=0.0)).search(question, k=3)}
    assert without["a.txt"].subword_rank is None and without["a.txt"].score < found["a.txt"].score
    # lexical mode stays whole words only
    assert all(h.subword_rank is None for h in Retriever(index, embedder, RetrievalConfig("lexical")).search("cookies", k=2))


def test_an_index_built_without_sub_words_still_loads_and_searches(tmp_path):
    root, embedder = _glued_index(tmp_path)
    folder = store.current_folder(root)
    shutil.rmtree(folder / "subwords")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"] = {name: entry for name, entry in manifest["files"].items() if not name.startswith("subwords/")}
    manifest["checksum"] = store._manifest_checksum(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    index = store.load(root)
    assert index.subwords is None
    hits = Retriever(index, embedder).search("Les cookies ?", k=2)
    assert hits[0].chunk.source == "c.txt" and hits[0].subword_rank is None
