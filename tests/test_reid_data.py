"""Market-1501 reading (fake zip/folder and the real zip), harvested-crop manifests, transforms, samplers."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from reid.data.manifest import MANIFEST_COLUMNS, HarvestedCrops
from reid.data.market1501 import ImageRecord, Market1501, parse_name
from reid.data.samplers import CameraAwarePKSampler, PKSampler
from reid.data.synthetic import ROOT_NAME, write_synthetic_market
from reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, build_eval_transform, build_train_transform

MARKET_ZIP = "data/market1501/Market-1501-v15.09.15.zip"


def _jpeg(colour: tuple[int, int, int], shape: tuple[int, int] = (16, 8)) -> bytes:
    return cv2.imencode(".jpg", np.full((*shape, 3), colour, dtype=np.uint8))[1].tobytes()


# ---------------------------------------------------------------- Market-1501 names and layout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("0002_c1s1_000451_03.jpg", (2, 0, 1, 451)),
        ("1488_c5s3_071862_01.jpg.jpg", (1488, 4, 3, 71862)),
        ("0000_c6s3_094992_01.jpg", (0, 5, 3, 94992)),
        ("-1_c4s6_022316_11.jpg", (-1, 3, 6, 22316)),
        ("dir/sub/0007_c2s2_000001_00.jpg", (7, 1, 2, 1)),
        ("Thumbs.db", None),
        ("0002_c0s1_000451_03.jpg", None),  # cameras are 1-based
        ("-2_c1s1_000451_03.jpg", None),
        ("0002_c1s1_000451_03.png", None),
    ],
)
def test_parse_name(name: str, expected: tuple | None) -> None:
    rec = parse_name(name)
    if expected is None:
        assert rec is None
    else:
        assert (rec.pid, rec.camid, rec.seq, rec.frame) == expected
        assert rec.path == name


def _hand_zip(path: Path, folders: dict[str, list[str]], prefix: str = "Market/") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for folder, names in folders.items():
            zf.writestr(f"{prefix}{folder}/", b"")
            for i, name in enumerate(names):
                data = b"junk" if name.endswith(".db") else _jpeg((10 * i, 100, 200))
                zf.writestr(f"{prefix}{folder}/{name}", data)
    return path


HAND_LAYOUT = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0007_c3s2_000100_00.jpg",
        "Thumbs.db",
    ],
    "query": ["0010_c1s1_000001_00.jpg", "0011_c2s1_000002_00.jpg.jpg"],
    "bounding_box_test": [
        "0010_c2s1_000005_00.jpg",
        "0011_c1s1_000006_00.jpg",
        "0000_c3s1_000007_00.jpg",
        "-1_c4s1_000008_00.jpg.jpg",
    ],
}


def test_market_from_hand_made_zip(tmp_path: Path) -> None:
    m = Market1501(_hand_zip(tmp_path / "m.zip", HAND_LAYOUT))
    assert (len(m.train), len(m.query), len(m.gallery)) == (3, 2, 4)
    assert m.num_ids("train") == 2 and m.num_ids("gallery") == 2  # distractor and junk not counted
    assert sorted(r.pid for r in m.gallery) == [-1, 0, 10, 11]
    q = {r.pid: r for r in m.query}
    assert q[11].camid == 1 and q[11].path == "Market/query/0011_c2s1_000002_00.jpg.jpg"
    pids, camids = m.labels("gallery")
    assert pids.dtype == np.int64 and sorted(camids.tolist()) == [0, 1, 2, 3]
    image = m.read(m.train[0])
    assert image.shape == (16, 8, 3) and image.dtype == np.uint8
    assert abs(int(image[8, 4, 2]) - 200) <= 3  # BGR order kept: red channel last


def test_market_folder_matches_zip(tmp_path: Path) -> None:
    zipped = Market1501(write_synthetic_market(tmp_path / "s.zip"))
    folder = Market1501(write_synthetic_market(tmp_path / "dir", as_zip=False))
    for split in ("train", "query", "gallery"):
        assert [r.pid for r in zipped.split(split)] == [r.pid for r in folder.split(split)]
        assert [Path(r.path).name for r in zipped.split(split)] == [Path(r.path).name for r in folder.split(split)]
    assert np.array_equal(zipped.read(zipped.query[0]), folder.read(folder.query[0]))
    # defaults: 6 train ids x 3 cams x 2, 4 test ids x 3 cams (+2 distractors, 2 junk)
    assert (len(zipped.train), len(zipped.query), len(zipped.gallery)) == (36, 12, 28)
    assert sum(r.path.endswith(".jpg.jpg") for r in zipped.gallery) == 1


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        (
            {
                "bounding_box_train": ["0002_c1s1_000451_03.jpg"],
                "bounding_box_test": ["0002_c1s1_000451_03.jpg"],
            },
            "query",
        ),
        ({k: ["Thumbs.db"] for k in HAND_LAYOUT}, "PPPP_cCsS_FFFFFF_BB.jpg"),
        ({"images": ["0002_c1s1_000451_03.jpg"]}, "bounding_box_train"),
    ],
)
def test_market_rejects_other_layouts(tmp_path: Path, layout: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Market1501(_hand_zip(tmp_path / "bad.zip", layout))


def test_market_rejects_bad_roots(tmp_path: Path) -> None:
    (tmp_path / "notzip.zip").write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a zip"):
        Market1501(tmp_path / "notzip.zip")
    with pytest.raises(FileNotFoundError):
        Market1501(tmp_path / "missing.zip")
    with pytest.raises(ValueError, match="12936"):
        Market1501(_hand_zip(tmp_path / "m.zip", HAND_LAYOUT), expect_official=True)
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    write_synthetic_market(deep, as_zip=False)
    assert len(Market1501(tmp_path / "a" / "b").train) == 36  # two levels above the split folders: found
    with pytest.raises(ValueError, match="got none of them"):
        Market1501(tmp_path)  # deeper than that: not searched


def test_real_market_zip_counts(shared) -> None:
    m = Market1501(shared(MARKET_ZIP), expect_official=True)
    assert (len(m.train), len(m.query), len(m.gallery)) == (12936, 3368, 19732)
    assert (m.num_ids("train"), m.num_ids("query"), m.num_ids("gallery")) == (751, 750, 750)
    assert sum(r.path.endswith(".jpg.jpg") for r in m.query + m.gallery) == 24
    assert {r.camid for r in m.train} == set(range(6))
    assert not {r.pid for r in m.train} & {r.pid for r in m.query}
    assert m.read(m.query[0]).shape == (128, 64, 3)


# ---------------------------------------------------------------- unlabeled view


def test_unlabeled_view_has_no_identities(tmp_path: Path) -> None:
    m = Market1501(write_synthetic_market(tmp_path / "s.zip"))
    view = m.unlabeled("train")
    assert len(view) == len(m.train)
    item = view[5]
    assert len(item) == 3 and item[1] == m.train[5].camid and item[2] == 5
    assert isinstance(item[0], np.ndarray) and item[0].shape == (128, 64, 3)
    assert not any("pid" in name for name in vars(view))
    restored = pickle.loads(pickle.dumps(view.with_transform(build_eval_transform())))  # as a DataLoader worker
    image, camid, index = restored[5]
    assert image.shape == (3, 256, 128) and camid == item[1] and index == 5


# ---------------------------------------------------------------- manifest


def _write_crops(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [",".join(MANIFEST_COLUMNS)]
    for row in rows:
        lines.append(",".join(str(row.get(c, 0)) for c in MANIFEST_COLUMNS))
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder / "manifest.csv"


def _crop_rows(n: int) -> list[dict]:
    return [
        {"path": f"crops/{i}.jpg", "camera_id": "cam_b" if i % 2 else "cam_a", "track_id": i // 2,
         "tracklet_id": 100 + i // 2, "frame_index": i, "timestamp": i / 10, "x1": 1, "y1": 2, "x2": 11,
         "y2": 32, "confidence": 0.9, "global_id": ""}
        for i in range(n)
    ]  # fmt: skip


def test_manifest_reads_and_skips_bad_crops(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = _crop_rows(6)
    (tmp_path / "crops").mkdir()
    for i in range(6):
        (tmp_path / "crops" / f"{i}.jpg").write_bytes(_jpeg((i * 40, 0, 0), (30, 10)))
    (tmp_path / "crops" / "3.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "crops" / "5.jpg").unlink()
    crops = HarvestedCrops(_write_crops(tmp_path, rows))
    assert crops.skipped == 2 and len(crops) == 4 and "skipped 2 of 6" in caplog.text
    assert crops.paths == ["crops/0.jpg", "crops/1.jpg", "crops/2.jpg", "crops/4.jpg"]
    assert crops.camera_names == ["cam_a", "cam_b"] and crops.camids.tolist() == [0, 1, 0, 0]
    assert crops.tracklet_ids.tolist() == [100, 100, 101, 102] and crops.global_ids.tolist() == [-1] * 4
    assert crops.boxes.shape == (4, 4) and crops.boxes[0].tolist() == [1, 2, 11, 32]
    assert crops.read(3).shape == (30, 10, 3)
    view = crops.unlabeled()
    assert view[1][1:] == (1, 1) and view.tracklet_ids.tolist() == [100, 100, 101, 102]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "missing"),
        (",".join(MANIFEST_COLUMNS) + "\n", "empty manifest"),
        ("path,camera_id\ncrops/0.jpg,cam\n", r"missing \['track_id'"),
        (",".join(MANIFEST_COLUMNS) + "\ncrops/0.jpg,cam,x,1,1,0,0,0,1,1,0.5,-1\n", "row 2 column track_id"),
        (",".join(MANIFEST_COLUMNS) + "\ncrops/nope.jpg,cam,1,1,1,0,0,0,1,1,0.5,-1\n", "none of 1 readable"),
    ],
)
def test_manifest_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "crops").mkdir()
    (tmp_path / "crops" / "0.jpg").write_bytes(_jpeg((0, 0, 255)))
    (tmp_path / "manifest.csv").write_text(content)
    with pytest.raises(ValueError, match=message):
        HarvestedCrops(tmp_path)


def test_manifest_missing_and_binary(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HarvestedCrops(tmp_path / "manifest.csv")
    (tmp_path / "manifest.csv").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="UTF-8"):
        HarvestedCrops(tmp_path)


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    "image",
    [
        np.full((40, 20, 3), (255, 0, 0), np.uint8),  # pure blue, BGR
        np.dstack([np.full((40, 20, 3), (255, 0, 0), np.uint8), np.zeros((40, 20, 1), np.uint8)]),  # BGRA
    ],
)
def test_eval_transform_converts_bgr_to_normalised_rgb(image: np.ndarray) -> None:
    out = build_eval_transform()(image)
    assert out.shape == (3, 256, 128) and out.dtype == torch.float32
    expected = [(v - m) / s for v, m, s in zip((0.0, 0.0, 1.0), IMAGENET_MEAN, IMAGENET_STD)]
    assert torch.allclose(out.mean(dim=(1, 2)), torch.tensor(expected), atol=1e-4)


def test_train_transform_shapes_and_randomness() -> None:
    torch.manual_seed(0)
    image = np.random.default_rng(0).integers(0, 255, (128, 64), dtype=np.uint8)  # grayscale accepted
    t = build_train_transform()
    a, b = t(image), t(image)
    assert a.shape == b.shape == (3, 256, 128) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="uint8"):
        t(image.astype(np.float32))
    with pytest.raises(ValueError, match="H, W > 0"):
        t(np.zeros((0, 5, 3), np.uint8))


# ---------------------------------------------------------------- samplers

LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, -1, 3, 3, -1, 4])


@pytest.mark.parametrize(("p", "k"), [(2, 2), (3, 4), (5, 1)])
def test_pk_sampler_batches(p: int, k: int) -> None:
    sampler = PKSampler(LABELS, p=p, k=k, seed=3, num_batches=6)
    indices = list(sampler)
    assert len(indices) == len(sampler) == 6 * p * k
    for s in range(0, len(indices), p * k):
        batch = LABELS[indices[s : s + p * k]]
        ids, counts = np.unique(batch, return_counts=True)
        assert len(ids) == p and (counts == k).all() and (ids >= 0).all()
    assert list(PKSampler(LABELS, p=p, k=k, seed=3, num_batches=6)) == indices  # deterministic
    sampler.set_epoch(1)
    assert list(sampler) != indices


def test_pk_sampler_covers_data_and_rejects_bad_labels() -> None:
    labels = np.repeat(np.arange(8), 4)
    seen = set(PKSampler(labels, p=4, k=4, seed=0))  # default: one sweep (2 batches of 16)
    assert len(seen) >= 28
    with pytest.raises(ValueError, match="at least p=6 identities"):
        PKSampler(LABELS, p=6, k=2)
    with pytest.raises(ValueError, match="integers"):
        PKSampler(np.array([0.5, 1.0]), p=1, k=1)


def test_camera_aware_sampler_prefers_other_cameras() -> None:
    labels = np.repeat(np.arange(4), 6)
    camids = np.tile([0, 0, 0, 0, 1, 2], 4)  # per identity: 4 images in camera 0, one in 1 and one in 2
    plain = list(PKSampler(labels, p=2, k=3, seed=1, num_batches=20))
    aware = list(CameraAwarePKSampler(labels, camids, p=2, k=3, seed=1, num_batches=20))
    for s in range(0, len(aware), 3):
        group = aware[s : s + 3]
        assert len(set(labels[group])) == 1
        anchor_cam = camids[group[0]]
        cross = int((camids[group[1:]] != anchor_cam).sum())
        assert cross == 2  # from camera 0: the camera-1 and camera-2 images; from 1 or 2: at least the other

    def cross_pairs(idx: list[int]) -> int:
        return sum(int((camids[idx[s + 1 : s + 3]] != camids[idx[s]]).sum()) for s in range(0, len(idx), 3))

    assert cross_pairs(aware) > cross_pairs(plain)
    with pytest.raises(ValueError, match="camids"):
        CameraAwarePKSampler(labels, camids[:-1], p=2, k=3)


def test_records_are_plain_values() -> None:
    rec = ImageRecord("a/0001_c1s1_000001_00.jpg", 1, 0, 1, 1)
    assert rec == parse_name("a/0001_c1s1_000001_00.jpg")
    assert ROOT_NAME.startswith("Market-1501")
