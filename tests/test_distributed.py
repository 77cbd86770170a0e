"""The Ray engine: same identities as the local engine, worker and identity-service faults, checkpoints.

The Ray tests share one local cluster (num_cpus=2) and run the shipped sample clips with the weight-free
detector and the classical embedder, so they need no downloaded file.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from configs import config_from_dict
from pipeline.distributed.engine import camera_groups, run_ray
from pipeline.distributed.service import CHECKPOINT_FILE, NEXT_ID_FILE, IdentityService
from pipeline.distributed.worker import CameraWorker
from pipeline.embed import build_embedder
from pipeline.engine import run_pipeline
from pipeline.evaluation.evaluate import evaluate_folders
from pipeline.identity.outputs import load_tracklets
from pipeline.identity.updates import TrackletUpdate
from pipeline.records import tracklet_ids_of
from pipeline.run import main as run_main

SAMPLES = Path(__file__).resolve().parents[1] / "sample_videos"
ray = pytest.importorskip("ray", reason="Ray is a dependency: pip install -e .")


def sample_config(max_frames: int | None = None, crops: bool = True):
    cams = [{"id": f"cam{i}", "source": str(SAMPLES / f"cam{i}.mp4"), "max_frames": max_frames} for i in range(3)]
    return config_from_dict({
        "cameras": cams, "detector": {"backend": "bgsub"}, "embed": {"weights": "classical"},
        "linking": {"offline": True}, "outputs": {"crops": crops, "crop_every": 5, "progress": False},
    })  # fmt: skip


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def assert_outputs_agree(out: Path) -> dict[int, int]:
    """manifest, tracks, tracklets.npz and the events agree on tracklet and global ids; returns the mapping."""
    tracklets, _ = load_tracklets(out)
    final = {t.tracklet_id: t.global_id for t in tracklets}
    assert len(final) == len(tracklets)  # one id, one tracklet
    by_track: dict[tuple[str, int], list] = {}
    for t in tracklets:
        by_track.setdefault((t.camera_id, t.track_id), []).append((t.first_frame, t.last_frame))
    for spans in by_track.values():  # one track's tracklets follow each other: never two at once
        spans.sort()
        assert all(a[1] < b[0] for a, b in zip(spans, spans[1:])), spans
    for name in ("tracks.csv", "crops/manifest.csv"):
        rows = read_csv(out / name)
        assert rows and all(final[int(r["tracklet_id"])] == int(r["global_id"]) for r in rows), name
    replay: dict[int, int] = {}
    for e in read_csv(out / "identity_events.csv"):
        replay[int(e["tracklet_id"])] = int(e["global_id"])
    assert {t: g for t, g in replay.items() if g >= 0} == {t: g for t, g in final.items() if g >= 0}
    return final


def test_camera_groups_split_round_robin() -> None:
    assert camera_groups(["a", "b", "c"], 2) == [["a", "c"], ["b"]]
    assert camera_groups(["a"], 4) == [["a"]]
    with pytest.raises(Exception, match="--workers"):
        camera_groups(["a"], 0)


def updates(camera: str, frame: int, tracks: list[int], vectors: np.ndarray) -> list[TrackletUpdate]:
    boxes = np.array([[40 * i, 0, 40 * i + 30, 90] for i in range(len(tracks))], np.float32)
    return [TrackletUpdate(camera, frame, frame / 10.0, np.array(tracks, np.int64), boxes,
                           np.full(len(tracks), 0.9, np.float32), np.arange(len(tracks)), vectors)]  # fmt: skip


def test_service_resumes_from_its_checkpoint_and_never_reuses_a_tracklet_id(tmp_path: Path) -> None:
    cfg = sample_config()
    rng = np.random.default_rng(0)
    people = rng.standard_normal((3, 16)).astype(np.float32)
    people /= np.linalg.norm(people, axis=1, keepdims=True)
    service = IdentityService(16, ["cam0", "cam1"], cfg.linking, str(tmp_path), checkpoint_s=3600)
    for f in range(12):
        service.update(updates("cam0", f, [1, 2], people[:2]))
    service.checkpoint()
    before = service.link.record.mapping()
    query = people[:1]
    scores_before = service.link.gallery.search(query, 2)
    for f in range(12, 20):  # after the checkpoint: a new tracklet whose id has left the service
        (ids, _), = service.update(updates("cam1", f, [7], people[2:]))
    assert (tmp_path / CHECKPOINT_FILE).is_file() and int((tmp_path / NEXT_ID_FILE).read_text()) == ids[0] + 1
    restored = IdentityService(16, ["cam0", "cam1"], cfg.linking, str(tmp_path))  # as Ray restarts it
    assert restored.restored is not None and restored.counters["restarts"] == 1
    assert restored.link.record.mapping() == before and len(restored.link.store) == 2
    np.testing.assert_allclose(restored.link.gallery.search(query, 2)[0], scores_before[0], atol=1e-6)
    (again, _), = restored.update(updates("cam1", 20, [7], people[2:]))
    assert again[0] > ids[0]  # the id handed out after the checkpoint is never minted again


def test_a_worker_without_reid_numbers_tracklets_in_its_own_block() -> None:
    cfg = dataclasses.replace(sample_config(max_frames=40, crops=False), embed=None)
    from pipeline.engine import prepare_sources

    worker = CameraWorker(cfg, ["cam0", "cam1"], prepare_sources(cfg), index=1, n_workers=2)
    worker.start(first_tracklet=3)
    frames = []
    while True:
        result = worker.step(16)
        frames += result.frames
        if result.done:
            break
    assert len(frames) == 80
    ids = np.concatenate([tracklet_ids_of(d) for _, d in frames if len(d)])
    assert len(ids) and (ids % 2 == 1).all() and ids.min() >= 7  # k * 2 + 1 with k >= 3
    assert all(f.image.size == 0 for f, _ in frames)  # no pixels leave a worker


def test_ray_engine_gives_the_local_engines_identities(tmp_path: Path, cluster) -> None:
    cfg = sample_config()
    local = run_pipeline(cfg, tmp_path / "local", _detector(cfg), progress=False, embedder=build_embedder(cfg))
    summary = run_ray(cfg, tmp_path / "ray", workers=2, progress=False)
    scores = {name: evaluate_folders(SAMPLES / "gt", tmp_path / name / "mot_global")["multicamera"]["idf1"]
              for name in ("local", "ray")}  # fmt: skip
    assert abs(scores["ray"] - scores["local"]) <= 0.01 and scores["ray"] > 0.85, scores
    assert summary["frames"] == local["frames"] == 750 and not summary["failed_cameras"]
    assert summary["engine"]["update_bytes_per_frame"] > 0
    assert_outputs_agree(tmp_path / "ray")
    for name in ("identities.csv", "gallery.npz", "identities/index.html", "summary.json"):
        assert (tmp_path / "ray" / name).is_file(), name


def test_a_shared_embedder_serves_every_worker_with_the_same_identities(tmp_path: Path, cluster) -> None:
    cfg = sample_config(crops=False)
    summary = run_ray(cfg, tmp_path / "ray", workers=2, progress=False, shared_embedder=True)
    served = summary["engine"]["shared_embedder"]
    assert served["crops"] == summary["identities"]["crops_embedded"] > 0 and served["model_calls"] >= 1
    assert evaluate_folders(SAMPLES / "gt", tmp_path / "ray" / "mot_global")["multicamera"]["idf1"] > 0.85
    assert_outputs_agree_without_crops(tmp_path / "ray")


def assert_outputs_agree_without_crops(out: Path) -> None:
    final = {t.tracklet_id: t.global_id for t in load_tracklets(out)[0]}
    assert all(final[int(r["tracklet_id"])] == int(r["global_id"]) for r in read_csv(out / "tracks.csv"))


def _detector(cfg):
    from detectors import detector_from_config

    return detector_from_config(cfg.detector)


def test_a_killed_worker_is_restarted_and_every_camera_is_complete(tmp_path: Path, cluster) -> None:
    cfg = sample_config(max_frames=120)
    killed = []

    def kill_worker_0(run, i, result) -> None:
        if i == 0 and not killed and run.steps >= 2:
            pid = ray.get(run.workers[0].pid.remote())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    summary = run_ray(cfg, tmp_path / "run", workers=2, progress=False, frames_per_step=8, hook=kill_worker_0)
    assert killed and summary["engine"]["worker_restarts"][0] == 1
    assert {c: s["frames"] for c, s in summary["cameras"].items()} == {"cam0": 120, "cam1": 120, "cam2": 120}
    frames = {}
    for r in read_csv(tmp_path / "run" / "tracks.csv"):
        frames.setdefault(r["camera_id"], set()).add(int(r["frame"]))
    assert all(max(f) >= 110 for f in frames.values()) and len(frames) == 3  # every camera to its end
    assert_outputs_agree(tmp_path / "run")


def test_a_restarted_identity_service_resumes_from_its_checkpoint(tmp_path: Path, cluster) -> None:
    cfg = sample_config(max_frames=150)
    out = tmp_path / "run"
    killed = []

    def kill_service(run, i, result) -> None:
        if not killed and sum(run.frames_done.values()) >= 240 and (out / "checkpoint" / CHECKPOINT_FILE).is_file():
            pid = ray.get(run.service.pid.remote())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    summary = run_ray(cfg, out, workers=2, progress=False, frames_per_step=8, checkpoint_s=0.05, hook=kill_service)
    stats = summary["engine"]["identity_service"]
    assert killed and stats["restarts"] == 1 and stats["restored"]["tracklets"] >= 1
    assert summary["frames"] == 450 and summary["identities"]["global_ids"] >= 2
    assert_outputs_agree(out)


def test_an_unreachable_address_exits_2(tmp_path: Path, capsys) -> None:
    code = run_main([str(SAMPLES / "cam0.mp4"), "--weights", "bgsub", "--engine", "ray", "--address", "127.0.0.1:9",
                     "--out", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    assert code == 2 and "no Ray head reachable" in capsys.readouterr().err

