"""An embedder with its own search sides (E5 behind USE, `SearchPair`): the index stores the
passage side, a search embeds the query side, every other comparison of meaning uses `embed`, and
its fusion weight scales the dense list."""

import numpy as np
import pytest

from rag import store
from rag.documents import load_corpus
from rag.embedders import fusion_weight, load_embedder, passage_embedder, query_embedder
from rag.retrieval import RetrievalConfig, Retriever
from conftest import FakeEmbedder  # tests/ is on sys.path under pytest (rootdir conftest)


class SidedEmbedder(FakeEmbedder):
    """The fake bag-of-stems vectors, rotated on the search sides: a chunk vector that came from
    `embed` instead of `embed_passages` (or a query embedded with `embed`) no longer matches."""

    name = "sided-fake"

    def __init__(self, weight: float = 1.0):
        super().__init__()
        self.fusion_weight = weight
        self.calls: list[str] = []
        self._turn = np.roll(np.eye(self.dim, dtype=np.float32), 7, axis=1)

    def embed(self, texts):
        self.calls.append("embed")
        return super().embed(texts)

    def embed_passages(self, texts):
        self.calls.append("passages")
        return super().embed(texts) @ self._turn

    def embed_queries(self, texts):
        self.calls.append("queries")
        return super().embed(texts) @ self._turn


def _index(tmp_path, embedder):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Les cookies sont de petits fichiers déposés par un site.\n", encoding="utf-8")
    (corpus / "b.txt").write_text("La vidéosurveillance au travail est encadrée par la loi.\n", encoding="utf-8")
    (corpus / "c.txt").write_text("Un courrier postal part sans formalité particulière.\n", encoding="utf-8")
    store.build(tmp_path / "index", load_corpus(corpus), embedder, 900)
    return store.load(tmp_path / "index")


def test_the_index_holds_passage_side_vectors_and_the_bridge_the_embed_side(tmp_path):
    embedder = SidedEmbedder()
    index = _index(tmp_path, embedder)
    texts = [c.text for c in index.chunks]
    assert np.allclose(index.vectors, embedder.embed_passages(texts), atol=1e-3)  # stored as float16
    assert not np.allclose(index.vectors, embedder.embed(texts), atol=1e-2)
    assert np.allclose(index.bridge.vectors, embedder.embed(index.bridge.surfaces), atol=1e-3)


def test_dense_search_embeds_the_query_side(tmp_path):
    embedder = SidedEmbedder()
    index = _index(tmp_path, embedder)
    embedder.calls.clear()
    hits = Retriever(index, embedder, RetrievalConfig("dense")).search("petits fichiers cookies", k=1)
    assert hits[0].chunk.source == "a.txt" and hits[0].dense_score == pytest.approx(1.0, abs=0.35)
    assert embedder.calls == ["queries"]


def test_the_embedders_fusion_weight_scales_the_dense_list(tmp_path):
    plain, heavy = SidedEmbedder(1.0), SidedEmbedder(3.0)
    index = _index(tmp_path, plain)
    question = "loi sur les petits fichiers"  # BM25 and dense disagree on the first passage
    one = {h.chunk.source: h.score for h in Retriever(index, plain).search(question, k=3)}
    three = {h.chunk.source: h.score for h in Retriever(index, heavy).search(question, k=3)}
    top_dense = Retriever(index, plain, RetrievalConfig("dense")).search(question, k=1)[0].chunk.source
    assert three[top_dense] - one[top_dense] == pytest.approx(2.0)  # its min-max score is 1, weighed 2 more


def test_an_embedder_without_search_sides_uses_embed_for_both():
    embedder = FakeEmbedder()
    assert passage_embedder(embedder) == embedder.embed and query_embedder(embedder) == embedder.embed
    assert fusion_weight(embedder) == 1.0 and fusion_weight(None) == 1.0


def test_an_unknown_loader_is_named_with_the_known_ones(tmp_path):
    from rag.errors import ModelError

    with pytest.raises(ModelError, match="e5\\+use"):
        load_embedder("x", "nope", tmp_path)


@pytest.mark.integration
def test_the_real_search_pair_searches_with_e5_and_compares_with_use(tmp_path):
    from rag.pipeline import load_configured_embedder
    from rag.settings import Settings

    pair = load_configured_embedder(Settings(), "e5-use-multilingual")
    assert pair.embed(["un mot"]).shape == (1, 512)  # USE: evidence, bridge, policy
    assert pair.embed_passages(["un mot"]).shape == (1, pair.dim) == (1, 384)  # E5: the chunks
    assert fusion_weight(pair) == 2.0
    index = _index(tmp_path, pair)
    hits = Retriever(index, pair, RetrievalConfig("dense")).search("Qu'est-ce qu'un traceur déposé par un site web ?", k=1)
    assert hits[0].chunk.source == "a.txt"
