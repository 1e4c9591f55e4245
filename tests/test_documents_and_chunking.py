import pytest

from rag.chunking import chunk_documents, paragraph_spans
from rag.documents import load_corpus
from rag.errors import CorpusError


def test_corpus_reads_txt_and_md_with_metadata(corpus):
    docs = load_corpus(corpus)
    assert [d.name for d in docs] == ["alpha.txt", "beta.md"]
    assert docs[0].title == "La boulangerie Martin agrandit son fournil"
    assert docs[1].date == "2024-05"


def test_every_chunk_is_the_exact_text_at_its_offsets(corpus):
    docs = {d.name: d for d in load_corpus(corpus)}
    chunks = chunk_documents(list(docs.values()), max_chars=120)
    assert len(chunks) > 3
    for chunk in chunks:
        assert docs[chunk.source].text[chunk.start:chunk.end] == chunk.text
        assert len(chunk.text) <= 120


def test_long_paragraph_is_split_at_sentence_ends(corpus):
    docs = load_corpus(corpus)
    chunks = [c for c in chunk_documents(docs, max_chars=100) if c.source == "alpha.txt" and c.paragraph == 2]
    assert len(chunks) == 2
    assert chunks[0].text.endswith("12 personnes.")


def test_chunk_ids_are_stable_and_content_derived(corpus):
    first = chunk_documents(load_corpus(corpus))
    second = chunk_documents(load_corpus(corpus))
    assert [c.id for c in first] == [c.id for c in second]
    (corpus / "alpha.txt").write_text((corpus / "alpha.txt").read_text() + "\nUne phrase de plus.\n")
    third = {c.id for c in chunk_documents(load_corpus(corpus), max_chars=100)}
    assert {c.id for c in chunk_documents(load_corpus(corpus.parent / "corpus"), max_chars=100)} == third


def test_paragraphs_are_lines():
    assert paragraph_spans("A.\n\nB.\nC.") == [(0, 2), (4, 6), (7, 9)]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "does not exist"),
        (lambda d: d.mkdir(), "holds no non-empty"),
        (lambda d: (d.mkdir(), (d / "x.txt").write_bytes(b"caf\xe9")), "not valid UTF-8"),
        (lambda d: (d.mkdir(), (d / "x.txt").write_bytes(b"\x00\x01\x02")), "binary"),
    ],
)
def test_bad_corpus_is_reported_with_the_file(tmp_path, setup, message):
    folder = tmp_path / "c"
    setup(folder)
    with pytest.raises(CorpusError, match=message):
        load_corpus(folder)
