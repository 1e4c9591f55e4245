"""A damaged index is found when it is loaded, file by file, before anything is parsed: bytes changed
in place, a cut or missing file, a garbled CURRENT pointer or manifest each give one message naming
the file and saying how to rebuild; and `rag index` on the same folder repairs it, never reusing
damaged vectors or documents."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from rag import store
from rag.documents import load_corpus
from rag.errors import IndexMismatch
from tests.conftest import FakeEmbedder
from tests.test_cli import assert_one_line_error, rag

LEXICAL = ["lexical/bm25.npz"]
SUBWORDS = [name.replace("lexical/", "subwords/", 1) for name in LEXICAL]  # BM25 over character n-grams
# no dense.faiss: the exact index is made from vectors.npy at load (test_store.py has the HNSW case)
FILES = ["vectors.npy", "bridge.npy", "bridge.json", "chunks.jsonl.gz", "documents.jsonl.gz", *LEXICAL, *SUBWORDS]


def garble(path: Path) -> None:
    """Random-looking bytes in the middle of the file; its size stays the same."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + 16, len(data))):
        data[i] ^= 0xA5
    path.write_bytes(bytes(data))


def one_letter(path: Path) -> None:
    """The quietest damage: one bit of one byte. In a text file, the first letter after the middle
    changes case, so the file still parses (a title, a word, a number that is slightly wrong)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    at = next((i for i in range(middle, len(data)) if chr(data[i]).isascii() and chr(data[i]).isalpha()), middle)
    data[at] ^= 0x20
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def delete(path: Path) -> None:
    path.unlink()


def damage_message(settings) -> str:
    with pytest.raises(IndexMismatch) as caught:
        store.load(settings.index_dir)
    return str(caught.value)


def assert_names(message: str, name: str) -> None:
    """The message says the index is damaged, which file is, and how to rebuild it."""
    assert f"is damaged ({name} " in message, message
    assert message.endswith("rebuild it with: rag index"), message


def test_the_manifest_records_every_file_of_the_build(built):
    settings, _ = built
    folder = store.current_folder(settings.index_dir)
    on_disk = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert on_disk == {*FILES, "manifest.json"}, "a new file in the build: add it to FILES"
    files = store.load_manifest(settings.index_dir)["files"]
    assert set(files) == set(FILES)
    for name in FILES:
        assert files[name]["size"] == (folder / name).stat().st_size
        assert len(files[name]["sha256"]) == 64


@pytest.mark.parametrize("damage", [garble, one_letter, truncate, delete], ids=lambda f: f.__name__)
@pytest.mark.parametrize("name", FILES)
def test_a_damaged_file_is_named(built, name, damage):
    settings, _ = built
    damage(store.current_folder(settings.index_dir) / name)
    assert_names(damage_message(settings), name)


@pytest.mark.parametrize("damage", [garble, one_letter, truncate, delete], ids=lambda f: f.__name__)
def test_a_damaged_manifest_is_named(built, damage):
    settings, _ = built
    damage(store.current_folder(settings.index_dir) / "manifest.json")
    assert_names(damage_message(settings), "manifest.json")
    with pytest.raises(IndexMismatch, match=r"damaged \(manifest\.json .*rag index"):
        store.load_manifest(settings.index_dir)  # what `rag collections` and the web page read


def test_a_manifest_without_checksums_is_refused(built):
    settings, _ = built
    path = store.current_folder(settings.index_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    del manifest["files"], manifest["checksum"]
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert_names(damage_message(settings), "manifest.json")


def test_a_manifest_edited_without_its_checksum_is_refused(built):
    settings, _ = built
    path = store.current_folder(settings.index_dir) / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["files"]["vectors.npy"]["size"] += 1  # JSON still valid, every key still there
    path.write_text(json.dumps(manifest), encoding="utf-8")
    assert_names(damage_message(settings), "manifest.json")


GARBLED_POINTERS = {
    "binary": b"\x8f\xff\x00\xc3(garbage\xfe\n",
    "empty": b"",
    "parent": b"../etc\n",
    "absolute": b"/etc\n",
    "dot": b".\n",
    "not-a-build": b"lexical\n",
    "absent-build": b"build-20990101-000000-0badcafe\n",
    "unfinished-build": b"build-20990101-000000-0badcafe.tmp\n",
}


@pytest.mark.parametrize("pointer", GARBLED_POINTERS.values(), ids=GARBLED_POINTERS.keys())
def test_a_garbled_current_pointer_is_named(built, pointer):
    settings, _ = built
    (settings.index_dir / "lexical").mkdir()  # a folder that exists but is not a build
    (settings.index_dir / "CURRENT").write_bytes(pointer)
    message = damage_message(settings)
    assert "is damaged (CURRENT " in message and message.endswith("rebuild it with: rag index"), message
    with pytest.raises(IndexMismatch, match=r"damaged \(CURRENT "):
        store.load_manifest(settings.index_dir)


@pytest.mark.parametrize(
    "name, damage",
    [("vectors.npy", garble), ("vectors.npy", truncate), ("lexical/bm25.npz", delete), ("subwords/bm25.npz", truncate),
     ("CURRENT", garble)],
)
def test_the_cli_says_it_in_one_line(built, name, damage):
    settings, _ = built
    target = settings.index_dir / name if name == "CURRENT" else store.current_folder(settings.index_dir) / name
    if name == "CURRENT":
        target.write_bytes(b"\x8f\xff\x00\xc3garbage\n")
    else:
        damage(target)
    done = rag("search", "boulangerie", "--index", str(settings.index_dir))
    assert_one_line_error(done, 1, "damaged", f"({name} ", "rag index")


def fresh_vectors(settings) -> np.ndarray:
    texts = [c.text for c in store.load(settings.index_dir).chunks]
    return FakeEmbedder().embed(texts)


@pytest.mark.parametrize("name", ["vectors.npy", "chunks.jsonl.gz", "bridge.npy", "bridge.json"])
def test_rag_index_repairs_without_reusing_damaged_vectors(built, name):
    settings, _ = built
    one_letter(store.current_folder(settings.index_dir) / name)
    assert_names(damage_message(settings), name)
    embedder = FakeEmbedder()
    report = store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    index = store.load(settings.index_dir)
    assert report.reused == 0 and report.embedded == report.chunks == len(index.chunks)
    assert np.allclose(index.vectors, fresh_vectors(settings), atol=1e-3)  # stored as float16
    assert np.allclose(index.bridge.vectors, FakeEmbedder().embed(index.bridge.surfaces), atol=1e-3)


@pytest.mark.parametrize("name", [*LEXICAL, *SUBWORDS, "documents.jsonl.gz"])
def test_rag_index_repairs_and_still_reuses_sound_vectors(built, name):
    settings, _ = built
    garble(store.current_folder(settings.index_dir) / name)
    assert_names(damage_message(settings), name)
    embedder = FakeEmbedder()
    report = store.build(settings.index_dir, load_corpus(settings.corpus_dir), embedder, settings.chunk_chars)
    assert report.embedded == 0 and embedder.texts == []  # only the damaged file had to be written again
    assert len(store.load(settings.index_dir).chunks) == report.chunks


def test_damaged_documents_are_not_reused_when_reindexing(built):
    settings, _ = built
    assert store.previous_documents(settings.index_dir)
    path = store.current_folder(settings.index_dir) / "documents.jsonl.gz"
    data = bytearray(gzip.decompress(path.read_bytes()))
    at = data.index(b'"text": "') + len('"text": "')
    data[at] ^= 0x20  # one letter of the first document's text changes case: still valid JSON
    path.write_bytes(gzip.compress(bytes(data)))
    assert store.previous_documents(settings.index_dir) == {}
    store.build(settings.index_dir, load_corpus(settings.corpus_dir), FakeEmbedder(), settings.chunk_chars)
    index = store.load(settings.index_dir)
    assert all(index.texts[d.name].text == d.text for d in load_corpus(settings.corpus_dir))


@pytest.mark.parametrize("pointer", GARBLED_POINTERS.values(), ids=GARBLED_POINTERS.keys())
def test_rag_index_repairs_a_garbled_pointer(built, pointer):
    settings, _ = built
    (settings.index_dir / "CURRENT").write_bytes(pointer)
    with pytest.raises(IndexMismatch, match=r"damaged \(CURRENT "):
        store.load(settings.index_dir)
    store.build(settings.index_dir, load_corpus(settings.corpus_dir), FakeEmbedder(), settings.chunk_chars)
    index = store.load(settings.index_dir)
    assert index.folder.parent == settings.index_dir and len(index.chunks) == index.dense.ntotal
