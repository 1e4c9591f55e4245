"""The server's collections: uploads and removals change what is answered, never anything else."""

from __future__ import annotations

import pytest

from rag.engines import Engines, Upload
from rag.errors import UsageError
from rag.indexing import index_collection
from tests.conftest import FakeEmbedder, FakeGenerator


@pytest.fixture
def engines(settings, corpus):
    settings = settings.with_overrides(collections_dir=settings.index_dir.parent / "collections")
    embedder = FakeEmbedder()
    found = Engines(settings, FakeGenerator(), embedder)
    index_collection(found.collection("shop"), corpus, embedder, settings.chunk_chars)
    return found


def test_removal_is_for_indexed_documents_only(engines, corpus):
    (corpus / "gold.jsonl").write_text("{}\n")  # in the folder, not a document of the index
    for name in ("gold.jsonl", "../corpus/alpha.txt", "missing.txt"):
        with pytest.raises(UsageError, match="is not a document"):
            engines.remove("shop", name)
    assert (corpus / "gold.jsonl").exists()
    done = engines.remove("shop", "beta.md")
    assert [d.name for d in done.corpus.documents] == ["alpha.txt"] and not (corpus / "beta.md").exists()
    with pytest.raises(UsageError, match="last document"):
        engines.remove("shop", "alpha.txt")
    assert (corpus / "alpha.txt").exists()


def test_an_upload_is_stored_with_a_safe_name_and_answered(engines, corpus, tmp_path):
    upload = tmp_path / "x.txt"
    upload.write_text("Le moulin de Saint-Clair produit 40 sacs de farine par jour.")
    done = engines.add("shop", [Upload("../../evil name.txt", upload)])
    assert (corpus / "evil name.txt").exists() and "evil name.txt" in engines.get("shop").index.texts
    assert len(done.corpus.documents) == 3
    with pytest.raises(UsageError, match="unsupported format"):
        engines.add("shop", [Upload("run.sh", upload)])


def test_an_upload_never_replaces_a_file_and_keeps_its_extension(engines, corpus, tmp_path):
    original = (corpus / "alpha.txt").read_text()
    first, second = tmp_path / "one.txt", tmp_path / "two.txt"
    first.write_text("Le moulin de Saint-Clair produit 40 sacs de farine par jour.")
    second.write_text("La scierie du Val emploie 9 personnes.")
    done = engines.add("shop", [Upload("alpha.txt", first), Upload("отчёт.txt", second), Upload("日本.txt", second)])
    assert done.stored == ["alpha (2).txt", "document.txt", "document (2).txt"]
    assert (corpus / "alpha.txt").read_text() == original
    assert {"alpha (2).txt", "document.txt", "document (2).txt"} <= set(engines.get("shop").index.texts)
