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
        (lambda d: d.mkdir(), "holds no readable document"),
        (lambda d: (d.mkdir(), (d / "x.txt").write_bytes(b"\x00\x01\x02")), "x.txt: binary"),
        (lambda d: (d.mkdir(), (d / "x.xlsx").write_bytes(b"PK\x03\x04")), r"x.xlsx: unsupported format \(.xlsx\)"),
    ],
)
def test_bad_corpus_is_reported_with_the_file(tmp_path, setup, message):
    folder = tmp_path / "c"
    setup(folder)
    with pytest.raises(CorpusError, match=message):
        load_corpus(folder)


def test_a_file_that_is_not_utf8_is_read_as_windows_1252_and_said(tmp_path):
    from rag.documents import scan_corpus

    (tmp_path / "vieux.txt").write_bytes("Le café est très bon, même à Noël.".encode("cp1252"))
    (tmp_path / "unicode.txt").write_bytes("Déjà vu.".encode("utf-16"))
    corpus = scan_corpus(tmp_path)
    docs = {d.name: d for d in corpus.documents}
    assert docs["vieux.txt"].text == "Le café est très bon, même à Noël."
    assert docs["vieux.txt"].notices == ("not UTF-8 (byte 6): read as Windows-1252",)
    assert docs["unicode.txt"].text == "Déjà vu." and not docs["unicode.txt"].notices


def test_a_mixed_folder_reports_every_skipped_file_with_its_reason(tmp_path):
    from rag.documents import scan_corpus

    (tmp_path / "ok.txt").write_text("Un texte lisible.")
    (tmp_path / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main")
    corpus = scan_corpus(tmp_path)
    assert [d.name for d in corpus.documents] == ["ok.txt"]
    reasons = {s.name: s.reason for s in corpus.skipped}
    assert set(reasons) == {"photo.png", "empty.txt", "broken.pdf"}
    assert reasons["photo.png"] == "unsupported format (.png)" and reasons["empty.txt"] == "no text"
    assert corpus.hidden == 1
    with pytest.raises(CorpusError, match="broken.pdf: .*--strict"):
        scan_corpus(tmp_path, strict=True)


def test_unchanged_files_are_not_parsed_again(tmp_path):
    from rag.documents import scan_corpus

    (tmp_path / "a.txt").write_text("Premier texte.")
    first = scan_corpus(tmp_path)
    (tmp_path / "b.txt").write_text("Second texte.")
    second = scan_corpus(tmp_path, previous={d.sha256: d for d in first.documents})
    assert second.reused == 1 and [d.name for d in second.documents] == ["a.txt", "b.txt"]


def test_a_file_name_that_is_not_utf8_is_skipped_with_its_reason(tmp_path):
    import os

    from rag.documents import scan_corpus

    (tmp_path / "ok.txt").write_text("Un texte lisible.")
    with open(os.path.join(os.fsencode(tmp_path), b"caf\xe9.txt"), "w") as handle:
        handle.write("Un nom de fichier en Latin-1.")
    corpus = scan_corpus(tmp_path)
    assert [d.name for d in corpus.documents] == ["ok.txt"]
    assert [s.reason for s in corpus.skipped] == ["the file name is not UTF-8; rename it"]
    assert corpus.skipped[0].name == "caf\\udce9.txt"


def test_a_file_renamed_to_another_format_is_read_again(tmp_path):
    from rag.documents import scan_corpus

    (tmp_path / "a.txt").write_text("# Guide\n\nLe **budget** est de 5 euros.\n")
    first = scan_corpus(tmp_path)
    assert "**" in first.documents[0].text
    (tmp_path / "a.txt").rename(tmp_path / "a.md")
    second = scan_corpus(tmp_path, previous={d.sha256: d for d in first.documents})
    assert second.reused == 0 and second.documents[0].format == "md" and "**" not in second.documents[0].text


@pytest.mark.parametrize("name", ["random.md", "bin.html", "noise.txt"])
def test_binary_bytes_under_a_text_name_are_skipped(tmp_path, name):
    import random

    from rag.documents import scan_corpus

    (tmp_path / "ok.txt").write_text("Un texte lisible.")
    rng = random.Random(7)
    (tmp_path / name).write_bytes(bytes(rng.randrange(256) for _ in range(3000)))
    corpus = scan_corpus(tmp_path)
    assert [d.name for d in corpus.documents] == ["ok.txt"]
    assert [(s.name, s.reason) for s in corpus.skipped] == [(name, "binary content, not text")]
