"""Market-1501, read in place from its official zip (``Market-1501-v15.09.15.zip``) or an extracted folder.

Layout: ``bounding_box_train/`` (12,936 images, 751 ids), ``query/`` (3,368), ``bounding_box_test/`` (the
gallery: 19,732 incl. distractors ``0000`` and junk ``-1``). Names are ``PPPP_cCsS_FFFFFF_BB.jpg``:
person id, camera 1-6, sequence, frame, box index; 24 files carry a doubled ``.jpg.jpg`` extension.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reid.data.images import ImageStore

if TYPE_CHECKING:
    from reid.data.datasets import UnlabeledImages

logger = logging.getLogger(__name__)

SPLIT_FOLDERS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
# (images, identities excluding distractor 0 and junk -1) of the official release
OFFICIAL_COUNTS = {"train": (12936, 751), "query": (3368, 750), "gallery": (19732, 750)}
DISTRACTOR_PID = 0
JUNK_PID = -1
_MAX_DEPTH = 4  # path components of an image key: [wrapper/]Market-1501-v15.09.15/query/x.jpg

_NAME_RE = re.compile(r"^(-?\d+)_c(\d)s(\d+)_(\d+)_(\d+)\.jpg(?:\.jpg)?$")
_MEMBER_RE = re.compile(r"^(?P<prefix>(?:.*/)?)(?P<folder>bounding_box_train|bounding_box_test|query)/(?P<name>[^/]+)$")


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One Market-1501 image.

    Attributes:
        path: zip member name or path relative to the dataset folder (a key of the ``ImageStore``).
        pid: person id; 0 = distractor, -1 = junk.
        camid: 0-based camera index (``c1`` -> 0).
        seq: the ``sS`` sequence number.
        frame: frame number within the sequence.
    """

    path: str
    pid: int
    camid: int
    seq: int
    frame: int


def parse_name(name: str) -> ImageRecord | None:
    """Parse ``PPPP_cCsS_FFFFFF_BB.jpg`` (or ``.jpg.jpg``) into a record, None when it does not match."""
    base = name.rsplit("/", 1)[-1]
    m = _NAME_RE.match(base)
    if m is None or int(m.group(2)) < 1:
        return None
    pid, cam, seq, frame = int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4))
    if pid < JUNK_PID:
        return None
    return ImageRecord(path=name, pid=pid, camid=cam - 1, seq=seq, frame=frame)


def _find_prefix(names: list[str], where: str) -> str:
    """The folder (within the store) that holds all three split folders."""
    found: dict[str, set[str]] = defaultdict(set)
    for n in names:
        m = _MEMBER_RE.match(n)
        if m and not n.startswith("__MACOSX/"):
            found[m.group("prefix")].add(m.group("folder"))
    expected = set(SPLIT_FOLDERS.values())
    complete = sorted((p for p, f in found.items() if f == expected), key=len)
    if not complete:
        seen = {p or "<root>": sorted(f) for p, f in found.items()}
        raise ValueError(
            f"{where}: expected a Market-1501 layout with folders {sorted(expected)} holding *.jpg images, "
            f"got {seen or 'none of them'}"
        )
    if len(complete) > 1 and len(complete[0]) == len(complete[1]):
        raise ValueError(f"{where}: expected one Market-1501 folder, got several: {complete}")
    return complete[0]


class Market1501:
    """Market-1501 splits as lists of :class:`ImageRecord`, and a reader for their images.

    Args:
        root: the official zip, or a folder containing ``bounding_box_train``, ``bounding_box_test`` and
            ``query`` (directly, or up to two folder levels down).
        expect_official: raise when image/identity counts differ from the official release (otherwise
            a difference is only logged, so tiny test copies work).

    Raises:
        FileNotFoundError: ``root`` does not exist.
        ValueError: ``root`` is not Market-1501 (missing split folders, an empty split, or counts differ
            with ``expect_official``).
    """

    def __init__(self, root: str | os.PathLike, expect_official: bool = False) -> None:
        self.store = ImageStore(root)
        names = self.store.names(max_depth=_MAX_DEPTH)
        prefix = _find_prefix(names, str(root))
        splits: dict[str, list[ImageRecord]] = {}
        for split, folder in SPLIT_FOLDERS.items():
            splits[split] = self._parse_folder(names, prefix + folder + "/")
        self.train: list[ImageRecord] = splits["train"]
        self.query: list[ImageRecord] = splits["query"]
        self.gallery: list[ImageRecord] = splits["gallery"]
        self._check_counts(expect_official)

    def _parse_folder(self, names: list[str], folder: str) -> list[ImageRecord]:
        records, skipped = [], []
        for n in names:
            if not n.startswith(folder) or "/" in n[len(folder) :]:
                continue
            if not n.lower().endswith(".jpg"):
                continue  # e.g. Windows Thumbs.db
            rec = parse_name(n)
            if rec is None:
                skipped.append(n)
            else:
                records.append(rec)
        if skipped:
            logger.warning("%s: skipped %d images with unparseable names, e.g. %s", folder, len(skipped), skipped[0])
        if not records:
            raise ValueError(f"{self.store.root}: expected images named PPPP_cCsS_FFFFFF_BB.jpg in {folder}, got none")
        records.sort(key=lambda r: r.path)
        return records

    def _check_counts(self, expect_official: bool) -> None:
        for split, (n_img, n_ids) in OFFICIAL_COUNTS.items():
            records = getattr(self, split)
            got = (len(records), self.num_ids(split))
            if got != (n_img, n_ids):
                msg = (
                    f"{self.store.root}: {split} expected {n_img} images / {n_ids} identities "
                    f"(official Market-1501), got {got[0]} / {got[1]}"
                )
                if expect_official:
                    raise ValueError(msg)
                logger.info(msg)

    def split(self, name: str) -> list[ImageRecord]:
        """Records of ``"train"``, ``"query"`` or ``"gallery"``."""
        if name not in SPLIT_FOLDERS:
            raise ValueError(f"split: expected one of {sorted(SPLIT_FOLDERS)}, got {name!r}")
        return getattr(self, name)

    def num_ids(self, split: str) -> int:
        """Identities in a split, not counting distractors (0) and junk (-1)."""
        return len({r.pid for r in self.split(split) if r.pid > DISTRACTOR_PID})

    def labels(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """``(pids, camids)`` of a split, both (N,) int64 (evaluation only: training must not see pids)."""
        records = self.split(split)
        pids = np.fromiter((r.pid for r in records), dtype=np.int64, count=len(records))
        camids = np.fromiter((r.camid for r in records), dtype=np.int64, count=len(records))
        return pids, camids

    def read(self, record: ImageRecord | str) -> np.ndarray:
        """Decode one image to (H, W, 3) uint8 BGR (Market crops are 128x64)."""
        return self.store.read(record.path if isinstance(record, ImageRecord) else record)

    def unlabeled(self, split: str = "train", transform: Callable | None = None) -> UnlabeledImages:
        """A label-free dataset view of a split: yields ``(image, camid, index)``, never a person id."""
        from reid.data.datasets import UnlabeledImages

        records = self.split(split)
        camids = np.fromiter((r.camid for r in records), dtype=np.int64, count=len(records))
        return UnlabeledImages(self.store, [r.path for r in records], camids, transform=transform)

    def __repr__(self) -> str:
        return (
            f"Market1501({str(self.store.root)!r}: train {len(self.train)} / {self.num_ids('train')} ids, "
            f"query {len(self.query)}, gallery {len(self.gallery)})"
        )
