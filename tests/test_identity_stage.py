"""The identity stage inside the pipeline and its end-of-run outputs, on scripted inputs with known answers."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from configs import ConfigError, config_from_dict
from pipeline import engine
from pipeline.engine import run_pipeline
from pipeline.identity.outputs import (
    assign_cut_rows,
    cuts_of,
    load_split_parent,
    load_tracklets,
    repeated_ids,
    rewrite_tracks,
)
from pipeline.identity.relink import main as relink_main
from pipeline.identity.tracklets import Tracklet

W, H = 160, 120
COLOURS = {"red": (0, 0, 255), "green": (0, 255, 0)}


def two_people_video(path: Path, n: int, order: tuple[str, str], tint: int = 0) -> Path:
    """A red and a green person-sized block side by side; ``order`` says which is on the left; ``tint``
    adds blue (as a different camera's colour cast would)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for _ in range(n):
        img = np.full((H, W, 3), 90, np.uint8)
        img[20:100, 20:50] = COLOURS[order[0]]
        img[20:100, 100:130] = COLOURS[order[1]]
        img[20:100, :, 0] = tint
        writer.write(img)
    writer.release()
    return path


class FixedBoxes:
    def __call__(self, images, camera_ids=None):
        xyxy = np.array([[20, 20, 50, 100], [100, 20, 130, 100]], np.float32)
        return [
            sv.Detections(xyxy=xyxy, confidence=np.full(2, 0.9, np.float32), class_id=np.zeros(2, int)) for _ in images
        ]


class ColourEmbedder:
    """Mean BGR colour of the crop, unit-normalised (red and green are orthogonal); optional NaNs."""

    embedding_dim = 3

    def __init__(self, nan: bool = False) -> None:
        self.nan = nan

    def __call__(self, crops):
        out = np.array([c.reshape(-1, 3).mean(0) + 1.0 for c in crops], np.float32).reshape(-1, 3)
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return np.full_like(out, np.nan) if self.nan else out


def run(tmp_path: Path, embedder, offline: bool = False, frames: int = 20, **embed) -> tuple[dict, Path]:
    cams = [
        {"id": "a", "source": str(two_people_video(tmp_path / "a.avi", frames, ("red", "green")))},
        {"id": "b", "source": str(two_people_video(tmp_path / "b.avi", frames, ("green", "red"), tint=40))},
    ]
    cfg = config_from_dict({
        "cameras": cams, "detector": {"backend": "bgsub"},
        "embed": {"weights": "classical", "min_height": 20, "every_k": 1, "slow_after": 0, **embed},
        "linking": {"threshold": 0.8, "min_crops": 2, "offline": offline, "offline_threshold": 0.8},
    })  # fmt: skip
    out = tmp_path / "run"
    return run_pipeline(cfg, out, FixedBoxes(), progress=False, embedder=embedder), out


def mot_ids(path: Path) -> dict[tuple[int, float], int]:
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    return {(int(r[0]), float(r[2])): int(r[1]) for r in rows}


@pytest.mark.parametrize("offline", [False, True])
def test_same_colour_gets_one_global_id_across_cameras(tmp_path: Path, offline: bool) -> None:
    summary, out = run(tmp_path, ColourEmbedder(), offline=offline)
    assert summary["identities"]["global_ids"] == 2 and summary["identities"]["multi_camera_ids"] == 2
    a, b = mot_ids(out / "mot_global" / "a.txt"), mot_ids(out / "mot_global" / "b.txt")
    frame = 10
    red_a, green_a = a[(frame, 20.0)], a[(frame, 100.0)]
    green_b, red_b = b[(frame, 20.0)], b[(frame, 100.0)]
    assert red_a == red_b and green_a == green_b and red_a != green_a
    with open(out / "tracks.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["global_id"] for r in rows} == {str(red_a), str(green_a)}
    identities = json.loads((out / "identities.json").read_text())
    assert [i["cameras"] for i in identities] == [["a", "b"], ["a", "b"]]
    assert (out / "identities" / "index.html").read_text().count("<img") == 2


def test_slower_crops_on_long_tracks_link_the_same(tmp_path: Path) -> None:
    (tmp_path / "all").mkdir()
    (tmp_path / "slow").mkdir()
    every_frame, _ = run(tmp_path / "all", ColourEmbedder(), frames=60)
    fewer, out = run(tmp_path / "slow", ColourEmbedder(), frames=60, slow_after=4, max_every_k=8)
    assert fewer["identities"]["crops_embedded"] < every_frame["identities"]["crops_embedded"] / 2
    for result in (every_frame, fewer):
        assert result["identities"]["global_ids"] == 2 and result["identities"]["multi_camera_ids"] == 2
    all_dir = tmp_path / "all" / "run"
    for camera in ("a", "b"):
        assert mot_ids(out / "mot_global" / f"{camera}.txt") == mot_ids(all_dir / "mot_global" / f"{camera}.txt")


class CallSizes(ColourEmbedder):
    """A ColourEmbedder that records how many crops each call received."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def __call__(self, crops):
        self.sizes.append(len(crops))
        return super().__call__(crops)


def test_grouped_batches_share_embedder_calls_and_keep_every_id(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "grouped").mkdir()
    single, grouped = CallSizes(), CallSizes()
    by_batch, one = run(tmp_path / "one", single, frames=30, group_frames=1)
    by_group, out = run(tmp_path / "grouped", grouped, frames=30, group_frames=8)  # 4 batches of 2 cameras
    assert sum(grouped.sizes) == sum(single.sizes) == by_batch["identities"]["crops_embedded"] > 0
    assert max(single.sizes) <= 4 and max(grouped.sizes) == 16  # 2 boxes x 2 cameras x 4 batches
    assert len(grouped.sizes) < len(single.sizes) / 3
    assert by_group["identities"] == by_batch["identities"]
    for name in ("mot_global/a.txt", "mot_global/b.txt", "tracks.csv"):
        assert (out / name).read_bytes() == (one / name).read_bytes(), name


def test_nan_embeddings_never_link_and_lose_no_row(tmp_path: Path) -> None:
    summary, out = run(tmp_path, ColourEmbedder(nan=True))
    assert summary["identities"]["global_ids"] == 0
    per_camera = np.loadtxt(out / "mot" / "a.txt", delimiter=",", ndmin=2)
    global_rows = np.loadtxt(out / "mot_global" / "a.txt", delimiter=",", ndmin=2)
    assert len(global_rows) == len(per_camera)  # unlinked rows keep fresh, distinct ids
    assert len(set(global_rows[:, 1])) == 2


def test_relink_cli_writes_a_new_folder_and_never_the_run(tmp_path: Path) -> None:
    _, out = run(tmp_path, ColourEmbedder())
    tracklets, thumbs = load_tracklets(out)
    assert len(tracklets) == 4 and all(len(thumbs[(t.camera_id, t.track_id)]) > 0 for t in tracklets)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert relink_main([str(out), "--threshold", "0.999"]) == 0  # too strict: nothing merges across cameras
    relinked = out / "relinked"
    identities = json.loads((relinked / "identities.json").read_text())
    assert len(identities) == 4 and all(len(i["cameras"]) == 1 for i in identities)
    assert (relinked / "tracks.csv").is_file() and (relinked / "mot_global").is_dir()
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file() and relinked not in p.parents}
    assert after == before  # the run itself is untouched
    assert relink_main([str(out), "--threshold", "0.999"]) == 2  # an existing --out needs --force
    assert relink_main([str(out), "--threshold", "0.999", "--force"]) == 0
    assert relink_main([str(out), "--out", str(out)]) == 2
    assert relink_main([str(tmp_path / "nowhere")]) == 2


def colour_change_video(path: Path, n: int, change: int | None) -> Path:
    """Red on the left (turning blue at frame ``change``, when given) and green on the right."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for i in range(n):
        img = np.full((H, W, 3), 90, np.uint8)
        img[20:100, 20:50] = COLOURS["red"] if change is None or i < change else (255, 0, 0)
        img[20:100, 100:130] = COLOURS["green"]
        writer.write(img)
    writer.release()
    return path


def test_relink_gives_a_lonely_cut_back_as_the_run_did(tmp_path: Path) -> None:
    cams = [{"id": "a", "source": str(colour_change_video(tmp_path / "a.avi", 40, change=20))},
            {"id": "b", "source": str(colour_change_video(tmp_path / "b.avi", 40, change=None))}]  # fmt: skip
    cfg = config_from_dict({
        "cameras": cams, "detector": {"backend": "bgsub"},
        "embed": {"weights": "classical", "min_height": 20, "every_k": 1, "slow_after": 0},
        "linking": {"min_crops": 2, "offline": True},
    })  # fmt: skip
    out = tmp_path / "run"
    summary = run_pipeline(cfg, out, FixedBoxes(), progress=False, embedder=ColourEmbedder())
    parents = load_split_parent(out)
    assert summary["identities"]["linking"]["switches_split"] == 1 and len(parents) == 1  # red -> blue is cut
    piece, parent = next(iter(parents.items()))
    assert summary["identities"]["global_ids"] == 2  # ... and the blue piece, alone, went back to red
    with open(out / "tracks.csv") as fh:  # the cut starts on the first blue crop: rows from then on are the piece's
        rows = [(int(r["frame"]), int(r["tracklet_id"])) for r in csv.DictReader(fh) if r["camera_id"] == "a"]
    red = [(f, k) for f, k in rows if k in (piece, parent) and f < 20]
    assert red and all(k == parent for _, k in red) and {k for f, k in rows if f >= 20} >= {piece}
    assert all(k == piece for f, k in rows if f >= 20 and k in (piece, parent))

    def ids_of(folder: Path) -> dict[int, int]:
        with open(folder / "tracks.csv") as fh:
            return {int(r["tracklet_id"]): int(r["global_id"]) for r in csv.DictReader(fh)}

    assert relink_main([str(out)]) == 0
    relinked = ids_of(out / "relinked")
    assert relinked[piece] == relinked[parent] and len(set(relinked.values())) == 2
    assert relinked == ids_of(out)
    with np.load(out / "tracklets.npz") as data:  # a run saved before cuts were recorded: the piece stays apart
        arrays = {k: data[k] for k in data.files if k != "split_parent"}
    np.savez_compressed(out / "tracklets.npz", **arrays)
    assert load_split_parent(out) == {}
    assert relink_main([str(out), "--force"]) == 0
    assert ids_of(out / "relinked")[piece] != ids_of(out / "relinked")[parent]


def test_relink_defaults_to_the_runs_own_linking(tmp_path: Path, monkeypatch) -> None:
    import pipeline.identity.relink as relink_module

    _, out = run(tmp_path, ColourEmbedder())
    seen: list[tuple] = []
    real = relink_module.offline_relink

    def spy(tracklets, **kw):
        seen.append((kw["threshold"], kw["center_cameras"]))
        return real(tracklets, **kw)

    monkeypatch.setattr(relink_module, "offline_relink", spy)
    assert relink_main([str(out)]) == 0
    assert relink_main([str(out), "--out", str(tmp_path / "b"), "--threshold", "0.9", "--no-center-cameras"]) == 0
    own = json.loads((out / "summary.json").read_text())["config"]["linking"]
    assert seen == [(own["offline_threshold"], own["center_cameras"]), (0.9, False)]  # the run's own, then flags
    assert relink_main([str(out), "--out", str(tmp_path / "c"), "--threshold", "auto"]) == 0
    report = json.loads((tmp_path / "c" / "relink.json").read_text())
    assert seen[-1] == ("auto", True) and "calibration" in report and -1.0 <= report["threshold"] <= 1.0


def test_relink_help_shows_defaults(capsys) -> None:
    with pytest.raises(SystemExit):
        relink_main(["--help"])
    text = capsys.readouterr().out
    assert "RUN_DIR/relinked" in text and "(default: average)" in text


def test_rewrite_maps_rows_by_tracklet_frame_span(tmp_path: Path) -> None:
    (tmp_path / "tracks.csv").write_text(
        "camera_id,frame,timestamp,track_id,global_id,x1,y1,x2,y2,confidence\n"
        "a,0,0.0,1,-1,0,0,10,20,0.9\na,5,0.5,1,-1,0,0,10,20,0.9\na,9,0.9,1,-1,0,0,10,20,0.9\nb,2,0.2,1,-1,5,5,15,25,0.8\n"
    )
    tracklets = [
        Tracklet(0, "a", 1, 0, 5, 0.0, 0.5),
        Tracklet(1, "a", 1, 9, 9, 0.9, 0.9),
        Tracklet(2, "b", 1, 2, 2, 0.2, 0.2),
    ]
    counts = rewrite_tracks(tmp_path, tracklets, {0: 7, 1: -1, 2: 7})
    assert counts == {"rows": 4, "linked_rows": 3, "unlinked_rows": 1, "duplicate_tracklets": 0}
    with open(tmp_path / "tracks.csv") as fh:
        assert [r["global_id"] for r in csv.DictReader(fh)] == ["7", "7", "-1", "7"]
    mot_a = np.loadtxt(tmp_path / "mot_global" / "a.txt", delimiter=",", ndmin=2)
    assert mot_a[:, 0].tolist() == [1, 6, 10] and mot_a[:, 1].tolist() == [7, 7, 8]
    assert len((tmp_path / "tracks.jsonl").read_text().splitlines()) == 4


def test_rows_between_a_cuts_crops_go_where_no_id_clashes() -> None:
    """Track 1 of camera a was cut: its parent (tracklet 0) ends on its last crop at frame 2, the piece
    (tracklet 5) starts on frame 8. Another track (tracklet 3) carries the piece's global id until frame 5,
    so the rows between go to the parent up to frame 5 and to the piece after it."""
    frames = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 3, 4, 5, 3])
    tids = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 3, 3, 3, 0])  # frame 8 written before the cut was noticed
    cams = np.array(["a"] * 13 + ["b"])  # the last row: another camera, untouched
    mapping = {0: 10, 5: 20, 3: 20}
    cuts = {5: (0, 2, 8)}
    got, unlinked = assign_cut_rows(tids, frames, cams, mapping, cuts)
    assert got.tolist() == [0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 3, 3, 3, 0] and not unlinked.any()
    again, _ = assign_cut_rows(got, frames, cams, mapping, cuts)
    assert again.tolist() == got.tolist()  # idempotent
    # no clash either way: the boundary is the middle of the gap (frames 3, 4 | 5, 6, 7)
    middle, _ = assign_cut_rows(tids, frames, cams, {0: 10, 5: 20, 3: 30}, cuts)
    assert middle[:8].tolist() == [0, 0, 0, 0, 0, 5, 5, 5]
    # a piece too short to be linked (no global id): the rows between stay with the parent
    short, _ = assign_cut_rows(tids, frames, cams, {0: 10, 3: 30}, cuts)
    assert short[:10].tolist() == [0] * 8 + [5, 5]
    # tracklet 3 carries the parent's id and tracklet 4 the piece's on frames 3-5: those rows get no global id
    both = np.concatenate([tids[:13], [4, 4, 4]]), np.concatenate([frames[:13], [3, 4, 5]])
    clash, unlinked = assign_cut_rows(*both, np.array(["a"] * 16), {0: 10, 5: 20, 3: 10, 4: 20}, cuts)
    assert np.flatnonzero(unlinked).tolist() == [3, 4, 5] and clash[6:10].tolist() == [5, 5, 5, 5]
    tracklets = [Tracklet(0, "a", 1, 0, 2, 0.0, 0.2), Tracklet(5, "a", 1, 8, 9, 0.8, 0.9)]
    assert cuts_of(tracklets, {5: 0}) == {5: (0, 2, 8)} and cuts_of(tracklets, None) == {}


def test_a_hand_off_frame_keeps_the_id_on_the_track_that_carries_on() -> None:
    cams = np.array(["a", "a", "a", "a", "b", "a"])
    frames = np.array([9, 10, 10, 11, 10, 10])
    gids = np.array([4, 4, 4, 4, 4, -1])
    tids = np.array([1, 1, 2, 2, 3, 5])  # tracklet 1 ends on frame 10, where 2 (same identity) starts
    assert repeated_ids(cams, frames, gids, tids).tolist() == [False, True, False, False, False, False]


@pytest.mark.parametrize(
    ("transit", "message"),
    [
        ([{"cameras": ["a", "z"]}], "unknown camera 'z'"),
        ([{"cameras": ["a", "a"]}], "expected two different cameras"),
        ([{"cameras": ["a", "b"], "min_s": 9, "max_s": 1}], "expected min_s <= max_s"),
    ],
)
def test_transit_windows_are_validated(transit: list, message: str) -> None:
    cams = [{"id": "a", "source": 0}, {"id": "b", "source": 1}]
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"cameras": cams, "detector": {"backend": "bgsub"}, "linking": {"transit": transit}})


def test_run_threshold_flag_sets_online_and_offline() -> None:
    from pipeline.run import apply_overrides, parse_args

    cfg = config_from_dict({"cameras": [{"id": "a", "source": 0}], "detector": {"backend": "bgsub"}})
    assert cfg.linking.threshold == "auto" and cfg.linking.offline_threshold == "auto"  # the default
    base = ["--cameras", "x.yaml"]
    linking = apply_overrides(cfg, parse_args(base + ["--threshold", "0.7"])).linking
    assert (linking.threshold, linking.offline_threshold) == (0.7, 0.7)
    assert apply_overrides(cfg, parse_args(base + ["--threshold", "auto"])).linking.threshold == "auto"
    for bad in ("1.5", "high"):
        with pytest.raises(ConfigError, match="--threshold: expected 'auto' or a cosine similarity"):
            apply_overrides(cfg, parse_args(base + ["--threshold", bad]))
    with pytest.raises(ConfigError, match="linking.threshold"):
        config_from_dict({"cameras": [{"id": "a", "source": 0}], "linking": {"threshold": "sometimes"}})


def test_a_second_ctrl_c_while_outputs_are_written_loses_nothing(tmp_path: Path, monkeypatch) -> None:
    save_tracklets = engine.save_tracklets

    def ctrl_c_again(*args, **kwargs):
        signal.raise_signal(signal.SIGINT)  # the user presses Ctrl-C while the end-of-run files are written
        return save_tracklets(*args, **kwargs)

    monkeypatch.setattr(engine, "save_tracklets", ctrl_c_again)
    summary, out = run(tmp_path, ColourEmbedder())
    saved = json.loads((out / "summary.json").read_text())
    assert saved["identities"]["global_ids"] == summary["identities"]["global_ids"] == 2
    assert len(load_tracklets(out)[0]) == 4 and (out / "identities.json").is_file()
    assert not list(out.glob(".*.tmp*"))  # no temporary file left behind
