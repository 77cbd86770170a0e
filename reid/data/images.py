"""Reading images from a folder or straight out of a zip archive, decoded to BGR uint8 arrays.

A :class:`ImageStore` is picklable (DataLoader workers get a copy) and keeps one open ``ZipFile`` per
process: the handle is reopened lazily after a fork, never shared across processes.
"""

from __future__ import annotations

import os
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (JPEG, PNG, ...) to an (H, W, 3) uint8 BGR array.

    Raises:
        ValueError: the bytes are not a decodable image.
    """
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"could not decode image {name} ({len(data)} bytes): expected JPEG/PNG data")
    return image


class ImageStore:
    """Reads images by key from a folder (key = path relative to it) or a zip file (key = member name).

    Args:
        root: a directory or a ``.zip`` file.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.exists():
            raise FileNotFoundError(f"image store: expected a folder or a .zip file, got missing path {root}")
        self.is_zip = self.root.is_file()
        if self.is_zip and not zipfile.is_zipfile(self.root):
            raise ValueError(f"image store: expected a folder or a .zip file, got {root} (not a zip archive)")
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_zip"], state["_zip_pid"], state["_lock"] = None, -1, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _handle(self) -> zipfile.ZipFile:
        """The process's own ZipFile handle (reopened after fork: a shared file offset would race)."""
        pid = os.getpid()
        if self._zip is None or self._zip_pid != pid:
            with self._lock:
                if self._zip is None or self._zip_pid != pid:
                    self._zip = zipfile.ZipFile(self.root)
                    self._zip_pid = pid
        return self._zip

    def names(self, max_depth: int | None = None) -> list[str]:
        """File keys: zip member names, or folder-relative POSIX paths (sorted for folders).

        Args:
            max_depth: only keys with at most this many path components (``a/b.jpg`` has 2); a folder
                walk does not descend deeper, so pointing at a large tree stays cheap.
        """
        if self.is_zip:
            names = [n for n in self._handle().namelist() if not n.endswith("/")]
            return names if max_depth is None else [n for n in names if n.count("/") < max_depth]
        out = []
        for folder, subdirs, files in os.walk(self.root):
            rel = Path(folder).relative_to(self.root)
            depth = len(rel.parts)
            if max_depth is not None and depth + 1 >= max_depth:
                subdirs.clear()
            if max_depth is None or depth < max_depth:
                out += [(rel / f).as_posix() for f in files]
        return sorted(out)

    def read_bytes(self, key: str) -> bytes:
        """The raw bytes stored under ``key``."""
        if self.is_zip:
            return self._handle().read(key)
        return (self.root / key).read_bytes()

    def read(self, key: str) -> np.ndarray:
        """Decode the image stored under ``key`` to (H, W, 3) uint8 BGR."""
        return decode_image(self.read_bytes(key), name=f"{self.root}:{key}")

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
            self._zip = None

    def __repr__(self) -> str:
        return f"ImageStore({str(self.root)!r}, zip={self.is_zip})"
