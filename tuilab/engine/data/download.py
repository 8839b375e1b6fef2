"""Fetching the IDX image sets (MNIST, Fashion-MNIST, KMNIST) with pooch: known hashes, the user cache.

Files come from each set's standard mirrors or, for institutions and offline clusters, from
one mirror given by TUILAB_DATA_MIRROR or --data-mirror (`URL/<set>/<file>`, the standard
file names). pooch downloads to a temporary file and moves it into place only once its hash
is right, so a transfer cut short or a wrong file leaves nothing in the cache.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# the MD5 of each .gz as published (and checked) by torchvision
FILES = {
    "mnist": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
              "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
              "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
              "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
    "fashion-mnist": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                      "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                      "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
    "kmnist": {"train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
               "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
               "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
               "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134"},
}
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    "kmnist": ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
}
MIRROR_ENV = "TUILAB_DATA_MIRROR"


class _Progress:
    """What pooch's downloader reports to: a bar redrawn in place on a terminal, else nothing
    (the caller writes one line per file for logs)."""

    def __init__(self, label: str, stream):
        self.label, self.stream, self.total, self.n = label, stream, 0, 0
        self.live = stream.isatty()

    def update(self, k: int) -> None:
        self.n += k
        if self.live and self.total:
            done = int(24 * self.n / self.total)
            self.stream.write(f"\r\x1b[2K{self.label} [{'#' * done}{'.' * (24 - done)}] "
                              f"{self.n / 1e6:.1f}/{self.total / 1e6:.1f} MB")
            self.stream.flush()

    def reset(self) -> None:
        self.n = 0

    def close(self) -> None:
        if self.live:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def mirrors_for(name: str, mirror: str | None = None) -> tuple[str, ...]:
    mirror = mirror or os.environ.get(MIRROR_ENV)
    if mirror:
        return (mirror.rstrip("/") + f"/{name}/",)
    return MIRRORS[name]


def fetch_image_set(name: str, dest: Path, mirror: str | None = None, stream=None) -> str | None:
    """Put `name`'s four files in dest/<name>/; None when they are there, else why not (a few words)."""
    try:
        import pooch
    except ImportError:
        return "pooch is not installed (pip install pooch)"
    import requests

    # pooch's own logger writes to the stderr it found at import; tuilab says its own line instead
    pooch.get_logger().setLevel("WARNING")
    stream = stream or sys.stderr
    folder = Path(dest) / name
    for fname, md5 in FILES[name].items():
        if (folder / fname).is_file() and pooch.file_hash(str(folder / fname), "md5") == md5:
            continue
        why = "no mirror"
        for base in mirrors_for(name, mirror):
            url = base + fname
            stream.write(f"tuilab: fetching {url}\n")
            stream.flush()
            progress = _Progress(fname, stream)
            try:
                pooch.retrieve(url, f"md5:{md5}", fname=fname, path=str(folder),
                               downloader=pooch.HTTPDownloader(progressbar=progress, timeout=30))
                why = None
                break
            except ValueError as exc:  # pooch: the hash did not match; the file was not kept
                why = f"{fname} from {base} had the wrong hash" if "hash" in str(exc).lower() else str(exc)
            except requests.exceptions.ChunkedEncodingError:  # fewer bytes came than were announced
                why = f"{fname} transfer from {base} was cut short"
            except requests.exceptions.ConnectionError as exc:
                text = str(exc)
                why = (f"{fname} transfer from {base} was cut short" if "IncompleteRead" in text
                       or "Connection broken" in text else f"could not connect to {base}")
            except requests.exceptions.RequestException as exc:
                why = f"{fname} from {base}: {type(exc).__name__}"
            except OSError as exc:
                why = f"cannot write {folder}: {exc.strerror}"
            finally:
                progress.close()
        if why is not None:
            return why
    return None
