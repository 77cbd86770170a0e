"""Gallery: search with per-identity collapse, updates, removal, expiry, capacity, persistence, threads, IVF."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from pipeline.identity.gallery import Gallery, GalleryFullError

D = 8
E = np.eye(D, dtype=np.float32)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def small_gallery(**kwargs: object) -> Gallery:
    """Identities 1, 2, 3 (ids start at 1) holding E[0], E[1], E[2]."""
    g = Gallery(D, device="cpu", **kwargs)
    for i in range(3):
        g.add_identity(E[i], f"cam{i}", float(i))
    return g


def test_search_orders_identities_and_pads() -> None:
    g = small_gallery()
    scores, ids = g.search(np.stack([E[1], unit(E[0] + 0.5 * E[2])]), k=4)
    assert scores.dtype == np.float32 and ids.dtype == np.int64 and ids.shape == (2, 4)
    assert ids[0].tolist()[:1] == [2] and ids[0, 3] == -1 and scores[0, 3] == -np.inf
    assert ids[1, :2].tolist() == [1, 3]
    np.testing.assert_allclose(scores[1, :2], [1 / np.sqrt(1.25), 0.5 / np.sqrt(1.25)], rtol=1e-5)


def test_prototypes_of_one_identity_collapse_to_one_hit() -> None:
    g = Gallery(D, device="cpu")
    rng = np.random.default_rng(0)
    a = g.add_identity(unit(E[0] + 0.05 * rng.standard_normal((6, D))), "a", 0.0)
    b = g.add_identity(unit(E[0] + 0.5 * E[1]), "a", 0.0)
    scores, ids = g.search(E[0], k=3)
    assert ids[0].tolist() == [a, b, -1]
    assert scores[0, 0] == pytest.approx(max(unit(g.prototypes(a)) @ E[0]), rel=1e-5)


def test_ids_are_never_reused() -> None:
    g = small_gallery(max_identities=3)
    g.remove(3)
    assert g.add_identity(E[3], "a", 5.0) == 4
    assert g.add_identity(E[4], "a", 6.0) == 5  # full: evicts id 1 (seen least recently)
    assert g.ids() == [2, 4, 5]
    with pytest.raises(KeyError, match="global id 1 is not in the gallery"):
        g.update(1, E[0], "a", 7.0)
    assert 1 not in g and 4 in g


def test_full_gallery_can_raise() -> None:
    g = small_gallery(max_identities=3, on_full="raise")
    with pytest.raises(GalleryFullError, match="max_identities=3"):
        g.add_identity(E[3], "a", 0.0)
    assert len(g) == 3 and g.next_id == 4


def test_update_replace_append_and_sightings() -> None:
    g = small_gallery(max_prototypes=3)
    g.update(1, np.stack([E[4], E[5]]), "camX", 10.0)
    assert g.search(E[0], 1)[0][0, 0] < 0.5  # E[0] replaced
    g.update(1, np.stack([E[6], E[7]]), "camY", 4.0, mode="append")
    np.testing.assert_allclose(g.prototypes(1), np.stack([E[5], E[6], E[7]]))  # newest 3 kept
    info = g.info(1)
    assert info.cameras == ["cam0", "camX", "camY"] and info.last_seen == 10.0 and info.last_camera == "camX"
    g.update(2, None, "camZ", 20.0)
    assert g.info(2).last_seen == 20.0 and g.search(E[1], 1)[1][0, 0] == 2


def test_many_updates_compact_and_stay_correct() -> None:
    g = Gallery(D, device="cpu")
    rng = np.random.default_rng(1)
    ids = [g.add_identity(unit(rng.standard_normal((4, D))), "a", 0.0) for _ in range(20)]
    for step in range(400):  # 1600 dead rows: forces compaction
        g.update(ids[step % 20], unit(rng.standard_normal((4, D))), "a", float(step))
    assert g.n_prototypes == 80
    for gid in ids:
        assert g.search(g.prototypes(gid)[:1], 1)[1][0, 0] == gid


def test_expire() -> None:
    g = Gallery(D, device="cpu", expiry_s=10.0)
    g.add_identity(E[0], "a", 0.0)
    g.add_identity(E[1], "a", 15.0)
    assert g.expire(5.0) == []
    assert g.expire(20.0) == [1]
    assert g.ids() == [2] and g.add_identity(E[2], "a", 21.0) == 3
    assert Gallery(D, device="cpu").expire(1e9) == []  # no expiry_s: never


def test_save_load_round_trip(tmp_path: Path) -> None:
    g = small_gallery()
    g.update(2, np.stack([E[1], E[5]]), "cam9", 9.0)
    g.remove(3)
    path = tmp_path / "sub" / "gallery.npz"
    g.save(path)
    h = Gallery.from_file(path, device="cpu")
    assert h.ids() == [1, 2] and h.next_id == 4 and h.add_identity(E[6], "a", 0.0) == 4
    assert h.info(2).cameras == ["cam1", "cam9"] and h.info(2).last_seen == 9.0
    q = np.stack([E[0], E[5], E[2]])
    for a, b in zip(g.search(q, 2), Gallery.from_file(path, device="cpu").search(q, 2)):
        np.testing.assert_array_equal(a, b)


def test_load_dim_mismatch_names_both_dims(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    small_gallery().save(path)
    with pytest.raises(ValueError, match=r"has dim 8, this gallery expects 16"):
        Gallery(16, device="cpu").load(path)


@pytest.mark.parametrize(
    "content", [b"", b"not a zip file at all", b"PK\x03\x04broken", bytes(range(256)) * 40, b"\x80\x04K\x01."]
)
def test_load_corrupt_file_names_it(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="bad.npz: not a readable gallery file") as err:
        Gallery(D, device="cpu").load(path)
    assert "expected the .npz archive Gallery.save writes" in str(err.value)
    assert "pickle" not in str(err.value)  # np.load's guess for random bytes misled users


def test_load_truncated_and_missing(tmp_path: Path) -> None:
    path = tmp_path / "g.npz"
    small_gallery().save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="g.npz: not a readable gallery file"):
        Gallery(D, device="cpu").load(path)
    with pytest.raises(FileNotFoundError, match="gallery file not found"):
        Gallery(D, device="cpu").load(tmp_path / "nope.npz")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric": "l2"}, "metric: expected one of cosine, ip, got 'l2'"),
        ({"index": "hnsw"}, "index: expected one of auto, flat, ivf, got 'hnsw'"),
        ({"on_full": "drop"}, "on_full: expected one of evict_oldest, raise"),
        ({"nprobe": 0}, "nprobe: expected a number > 0 or None, got 0"),
        ({"device": "tpu"}, "device: expected 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
        ({"device": "cuda:7"}, r"device: expected 'cpu' or 'auto' \(faiss sees 0 GPUs\), got 'cuda:7'"),
    ],
)
def test_bad_options(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Gallery(D, **kwargs)


@pytest.mark.parametrize(
    ("queries", "message"),
    [
        (np.ones((2, 4)), r"queries: expected \(k >= 1, 8\), got \(2, 4\)"),
        (np.full((1, D), np.nan), "queries: expected finite values"),
        (np.zeros((1, D)), "expected non-zero vectors"),
    ],
)
def test_bad_queries(queries: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        small_gallery().search(queries, 1)


def test_device_auto_is_cpu_without_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0)
    assert Gallery(D).device == "cpu"


def test_threads_add_and_search_without_losing_ids() -> None:
    g = Gallery(D, device="cpu")
    anchor = g.add_identity(E[0], "a", 0.0)
    got: list[int] = []
    errors: list[BaseException] = []

    def add(seed: int) -> None:
        r = np.random.default_rng(seed)
        for _ in range(50):
            got.append(g.add_identity(unit(r.standard_normal((2, D)) + 0.1), "a", 0.0))

    def search(seed: int) -> None:
        r = np.random.default_rng(seed)
        try:
            for _ in range(50):
                queries = np.concatenate([E[:1], unit(r.standard_normal((3, D)))])
                scores, ids = g.search(queries, 3)
                assert ids[0, 0] == anchor and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
                assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in ids)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(s,)) for s in range(4)]
    threads += [threading.Thread(target=search, args=(10 + s,)) for s in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often so unlocked code would interleave
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    assert sorted(got) == list(range(anchor + 1, anchor + 201)) and len(g) == 201 and g.n_prototypes == 401


def clustered(n_ids: int, per_id: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    modes = unit(rng.standard_normal((8, dim)))
    centers = unit(modes[rng.integers(0, 8, n_ids)] + 0.6 / np.sqrt(dim) * rng.standard_normal((n_ids, dim)))
    labels = np.repeat(np.arange(n_ids), per_id)
    protos = unit(centers[labels] + 0.5 / np.sqrt(dim) * rng.standard_normal((len(labels), dim)))
    queries = unit(centers[rng.integers(0, n_ids, 200)] + 0.8 / np.sqrt(dim) * rng.standard_normal((200, dim)))
    return protos, labels, queries


def test_flat_and_ivf_agree_on_clustered_data() -> None:
    protos, labels, queries = clustered(1000, 4, 32, seed=3)
    flat = Gallery(32, index="flat", device="cpu")
    ivf = Gallery(32, index="ivf", nlist=16, device="cpu")
    for g in (flat, ivf):
        g.add_identities(protos, labels, "a", 0.0)
    ivf.search(queries[:1], 1)
    assert flat.built_kind == "flat" and ivf.built_kind == "ivf"
    top_flat, top_ivf = flat.search(queries, 5)[1], ivf.search(queries, 5)[1]
    assert np.mean(top_flat[:, 0] == top_ivf[:, 0]) >= 0.99
    assert (top_ivf >= 0).all() and all(len(set(row)) == 5 for row in top_ivf.tolist())


def test_auto_switches_to_ivf_and_back() -> None:
    g = Gallery(16, device="cpu", ivf_threshold=600, nlist=8)
    protos, labels, _ = clustered(200, 4, 16, seed=4)
    ids = g.add_identities(protos, labels, "a", 0.0)
    assert g.built_kind == "ivf" and len(ids) == 200
    assert g.search(protos[:1], 1)[1][0, 0] == ids[0]
    rng = np.random.default_rng(5)
    for gid in ids[:160].tolist():  # 640 dead rows, twice: compactions that keep the trained lists
        g.update(gid, unit(rng.standard_normal((4, 16))), "a", 1.0)
        g.update(gid, g.prototypes(gid), "a", 2.0)
    assert g.built_kind == "ivf" and g.n_prototypes == 800
    assert all(g.search(g.prototypes(gid)[:1], 1)[1][0, 0] == gid for gid in ids[:160:7].tolist())
    for gid in ids[:150].tolist():
        g.remove(gid)
    assert g.built_kind == "flat" and g.search(protos[-1:], 1)[1][0, 0] == ids[-1]
