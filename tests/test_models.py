import hashlib
import http.server
import threading

import pytest

from rag import models
from rag.errors import ModelError, UsageError


def _manifest(tmp_path, text):
    path = tmp_path / "models.txt"
    path.write_text(text)
    return path


def test_manifest_lines_are_parsed(tmp_path):
    path = _manifest(tmp_path, "# comment\nembedder e1 package:some-dist/pkg/model loader=use\n"
                               "generator g1 local/model.gguf sha256=abc  # trailing\n")
    e1, g1 = models.read_manifest(path)
    assert (e1.role, e1.name, e1.distribution, e1.options) == ("embedder", "e1", "some-dist", {"loader": "use"})
    assert g1.sha256 == "abc" and g1.distribution is None


@pytest.mark.parametrize("line", ["embedder onlyname", "ranker x y", "generator g https://host/x.gguf"])
def test_bad_manifest_lines_name_the_line(tmp_path, line):
    with pytest.raises(UsageError, match="models.txt:1"):
        models.read_manifest(_manifest(tmp_path, line + "\n"))


def test_local_model_status_missing_present_and_wrong_checksum(tmp_path):
    good = hashlib.sha256(b"weights").hexdigest()
    path = _manifest(tmp_path, f"generator g local.gguf sha256={good}\n")
    (entry,) = models.read_manifest(path)
    cache = tmp_path / "cache"
    assert models.status(entry, tmp_path, cache).state == "missing"
    with pytest.raises(ModelError, match="rag models fetch g"):
        models.resolve(entry, tmp_path, cache)
    (tmp_path / "local.gguf").write_bytes(b"weights")
    assert models.status(entry, tmp_path, cache).state == "present"
    (tmp_path / "local.gguf").write_bytes(b"tampered!")
    assert models.status(entry, tmp_path, cache).state == "checksum wrong"
    with pytest.raises(ModelError, match="wrong checksum"):
        models.resolve(entry, tmp_path, cache)


def test_installed_package_is_found_without_importing_it(tmp_path):
    # pytest itself is an installed distribution: a package source resolves to its files
    (entry,) = models.read_manifest(_manifest(tmp_path, "embedder e package:pytest/_pytest\n"))
    assert models.status(entry, tmp_path, tmp_path).state == "present"
    (entry,) = models.read_manifest(_manifest(tmp_path, "embedder e package:no-such-dist-xyz\n"))
    assert models.status(entry, tmp_path, tmp_path).state == "missing"


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support, and can cut a response short once."""

    cut_after: int | None = None

    def log_message(self, *args):
        pass

    def do_GET(self):
        data = (self.server.root / self.path.lstrip("/")).read_bytes()
        start = 0
        if "Range" in self.headers:
            start = int(self.headers["Range"].split("=")[1].split("-")[0])
            self.send_response(206)
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = type(self).cut_after
        if limit is not None:
            type(self).cut_after = None
            self.wfile.write(body[:limit])
            self.wfile.flush()
            self.connection.close()
            return
        self.wfile.write(body)


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _RangeHandler)
    server.root = root
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_resumes_and_verifies_checksum(tmp_path, http_root):
    root, base = http_root
    payload = bytes(range(256)) * 4000
    (root / "m.gguf").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    target = tmp_path / "out" / "m.gguf"
    target.parent.mkdir()
    _RangeHandler.cut_after = 100_000  # the first attempt breaks off
    with pytest.raises(ModelError, match="again to resume"):
        models.download(f"{base}/m.gguf", target, digest, log=lambda *_: None, chunk=4096)
    partial = target.with_name("m.gguf.partial")
    assert partial.stat().st_size == 100_000
    messages = []
    models.download(f"{base}/m.gguf", target, digest, log=messages.append)
    assert "resuming at 100000" in messages[0]
    assert target.read_bytes() == payload and not partial.exists()


def test_download_with_wrong_checksum_is_rejected(tmp_path, http_root):
    root, base = http_root
    (root / "m.gguf").write_bytes(b"not the model")
    with pytest.raises(ModelError, match="expected"):
        models.download(f"{base}/m.gguf", tmp_path / "m.gguf", "0" * 64, log=lambda *_: None)
    assert not (tmp_path / "m.gguf").exists()


def test_assembled_file_is_checked(tmp_path, monkeypatch):
    parts = []
    for i, piece in enumerate([b"abc", b"def"]):
        part = tmp_path / f"model.gguf.part0{i}"
        part.write_bytes(piece)
        parts.append(part)
    monkeypatch.setattr(models, "_carried_parts", lambda dist, name: list(reversed(parts)))
    good = models.ModelEntry("generator", "g", "package:x", {"assemble": "model.gguf", "sha256": hashlib.sha256(b"abcdef").hexdigest()})
    out = models.assemble(good, tmp_path / "models", log=lambda *_: None)
    assert out.read_bytes() == b"abcdef"
    bad = models.ModelEntry("generator", "g", "package:x", {"assemble": "other.gguf", "sha256": "0" * 64})
    with pytest.raises(ModelError, match="expected"):
        models.assemble(bad, tmp_path / "models", log=lambda *_: None)
    assert not (tmp_path / "models" / "other.gguf").exists()
