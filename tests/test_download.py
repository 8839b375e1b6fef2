"""Fetching image sets from a mirror: a real HTTP server on 127.0.0.1 serving IDX files the test makes."""

import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from tests.test_data import make_image_set, refused_url
from tuilab.engine.data import download
from tuilab.engine.data import sets as data
from tuilab.errors import TuilabError


class Mirror:
    """A mirror folder served over HTTP; files named in `cut` are sent half, then the connection drops."""

    def __init__(self, root: Path):
        self.root, self.cut, self.requests = root, set(), []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                path = mirror.root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                body = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if path.name in mirror.cut:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.close()
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A mirror holding a tiny 'mnist' (20 training images) whose hashes tuilab is told to expect."""
    folder = make_image_set(tmp_path / "mirror" / "mnist", n_train=20)
    hashes = {name: hashlib.md5((folder / name).read_bytes()).hexdigest() for name in download.FILES["mnist"]}
    monkeypatch.setitem(download.FILES, "mnist", hashes)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TUILAB_DATA", raising=False)
    monkeypatch.delenv("TUILAB_DATA_MIRROR", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DATA", tmp_path / "system")
    with Mirror(tmp_path / "mirror") as m:
        yield m


def cached(tmp_path) -> list[str]:
    folder = tmp_path / "cache" / "tuilab" / "mnist"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_right_hashes_land_in_the_cache_and_load(mirror, tmp_path, capsys):
    src, notice = data.load_source("mnist", mirror=mirror.url)
    assert notice is None and src.name == "mnist" and len(src.X_train) == 20
    assert src.origin == str(tmp_path / "cache" / "tuilab" / "mnist")
    assert cached(tmp_path) == sorted(download.FILES["mnist"])
    err = capsys.readouterr().err
    assert err.count("tuilab: fetching ") == 4  # one line per file in a log
    mirror.requests.clear()
    again, _ = data.load_source("mnist", mirror=mirror.url)  # from the cache now: nothing fetched
    assert mirror.requests == [] and len(again.X_train) == 20


def test_the_mirror_comes_from_the_environment_too(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("TUILAB_DATA_MIRROR", mirror.url + "/")
    src, notice = data.load_source("mnist")
    assert notice is None and len(src.X_train) == 20
    assert "/mnist/train-images-idx3-ubyte.gz" in mirror.requests


def test_a_wrong_hash_keeps_nothing_and_says_so(mirror, tmp_path, monkeypatch):
    monkeypatch.setitem(download.FILES["mnist"], "t10k-images-idx3-ubyte.gz", "0" * 32)
    src, notice = data.load_source("mnist", mirror=mirror.url)
    assert src.name == "digits" and "\n" not in notice
    assert "t10k-images-idx3-ubyte.gz" in notice and "wrong hash" in notice
    assert "t10k-images-idx3-ubyte.gz" not in cached(tmp_path)
    assert not [n for n in cached(tmp_path) if n not in download.FILES["mnist"]]  # no temporary left


def test_a_transfer_cut_off_halfway_keeps_nothing_and_says_so(mirror, tmp_path):
    mirror.cut.add("train-labels-idx1-ubyte.gz")
    src, notice = data.load_source("mnist", mirror=mirror.url)
    assert src.name == "digits" and "\n" not in notice and "train-labels-idx1-ubyte.gz" in notice
    assert "cut short" in notice or "wrong hash" in notice
    assert cached(tmp_path) == ["train-images-idx3-ubyte.gz"]  # the one before it, whole; nothing half
    mirror.cut.clear()
    src, notice = data.load_source("mnist", mirror=mirror.url)  # the next try completes the set
    assert notice is None and len(src.X_train) == 20


def test_connection_refused_is_one_line_then_the_digits_or_exit_2(mirror, tmp_path):
    url = refused_url()
    src, notice = data.load_source("mnist", mirror=url)
    assert src.name == "digits" and "\n" not in notice
    assert "could not connect" in notice and "TUILAB_DATA_MIRROR" in notice and "bundled digits" in notice
    with pytest.raises(TuilabError, match="mnist: not found on disk and could not be fetched"):
        data.load_source("mnist", mirror=url, strict=True)
    assert cached(tmp_path) == []


def test_the_command_line_takes_a_mirror(mirror, tmp_path):
    import subprocess
    import sys

    env = {**__import__("os").environ, "XDG_CACHE_HOME": str(tmp_path / "cache2")}
    r = subprocess.run([sys.executable, "-c", (
        "import sys; from tuilab.engine.data import download;"
        f"download.FILES['mnist'] = {download.FILES['mnist']!r};"
        "from tuilab.cli import main;"
        f"sys.exit(main(['--preset', 'shallow-sigmoid', '--epochs', '1', '--data-mirror', {mirror.url!r},"
        f"'--strict-data', '--out', {str(tmp_path / 'o')!r}, 'headless']))")],
        capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "fetching " + mirror.url + "/mnist/" in r.stderr and "Shallow sigmoid net on MNIST: completed" in r.stdout
