from rag import store
from rag.chunking import Chunk
from rag.text import words
from rag.retrieval import RetrievalConfig, Retriever, fuse


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
