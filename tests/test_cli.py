"""The ``mcpa`` command and a quick-start run on the sample clips: a quiet console, outputs that agree."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from pipeline.cli import COMMANDS, main
from pipeline.run import camera_name

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_videos"


def mcpa(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``mcpa ARGS`` as a user types it, with stdout and stderr captured to pipes (not a terminal)."""
    cmd = [sys.executable, "-c", "import sys; from pipeline.cli import main; sys.exit(main())", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("quick") / "run"
    proc = mcpa("run", str(SAMPLES / "cam0.mp4"), str(SAMPLES / "cam1.mp4"), "--weights", "bgsub", "--video",
                "--crops", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def test_quick_run_console_is_quiet_and_ends_with_one_summary(quick_run) -> None:
    out, proc = quick_run
    assert "faiss.loader" not in proc.stderr and "\r" not in proc.stderr  # no library chatter, no bar codes
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("run done: 500 frames") and f"  output: {out}" in lines
    assert any(line.strip().startswith("next:") for line in lines)


def test_quick_run_names_cameras_after_their_sources_and_ids_start_at_one(quick_run) -> None:
    out, _ = quick_run
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary["cameras"]) == ["cam0", "cam1"]
    mot_ids = np.concatenate([np.loadtxt(out / "mot_global" / f"{c}.txt", delimiter=",", ndmin=2)[:, 1]
                              for c in ("cam0", "cam1")])  # fmt: skip
    assert mot_ids.min() >= 1
    ids = json.loads((out / "identities.json").read_text())
    assert min(r["global_id"] for r in ids) == 1


def test_quick_run_outputs_agree(quick_run) -> None:
    out, _ = quick_run
    with open(out / "tracks.csv", newline="") as fh:
        final = {(r["camera_id"], r["frame"], r["track_id"]): r["global_id"] for r in csv.DictReader(fh)}
    with open(out / "crops" / "manifest.csv", newline="") as fh:
        crops = list(csv.DictReader(fh))
    assert crops and all(final[(c["camera_id"], c["frame_index"], c["track_id"])] == c["global_id"] for c in crops)
    assert sum(c["global_id"] != "-1" for c in crops) > 0.9 * len(crops)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["videos"]["rendered"] and sorted(summary["videos"]["files"]) == ["cam0", "cam1"]
    with av.open(str(out / "videos" / "cam0.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == summary["cameras"]["cam0"]["frames"] == 250
    assert not list((out / "videos").glob(".*tmp*"))


def test_quick_run_review_page(quick_run) -> None:
    out, _ = quick_run
    page = (out / "identities" / "index.html").read_text()
    ids = json.loads((out / "identities.json").read_text())
    assert "<svg" in page and "Who was where, when" in page and "Unlinked tracklets" in page
    for rec in ids:
        assert f"<section id='g{rec['global_id']}'><h3>" in page and f"G{rec['global_id']} | " in page
        assert (out / "identities" / f"{rec['global_id']}.png").is_file()
    assert "../videos/cam0.mp4#t=" in page and "ReID model" in page and "cam0: 250 frames" in page


def test_mcpa_run_matches_pipeline_run_with_the_same_settings(quick_run, tmp_path: Path) -> None:
    out, _ = quick_run
    cams = tmp_path / "cams.yaml"
    cams.write_text(
        f"cameras:\n  - {{id: cam0, source: {SAMPLES / 'cam0.mp4'}}}\n"
        f"  - {{id: cam1, source: {SAMPLES / 'cam1.mp4'}}}\n"
        "detector: {backend: bgsub}\nembed: {weights: classical}\n"
    )
    cmd = [sys.executable, "-m", "pipeline.run", "--cameras", str(cams), "--out", str(tmp_path / "yaml")]
    assert subprocess.run(cmd, capture_output=True, cwd=REPO, timeout=300).returncode == 0
    for cam in ("cam0", "cam1"):
        assert (tmp_path / "yaml" / "mot_global" / f"{cam}.txt").read_text() == (
            out / "mot_global" / f"{cam}.txt"
        ).read_text()


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("videos/cam0.mp4", "cam0"),
        ("/data/frames/", "frames"),
        ("rtsp://user:secret@10.0.0.5:554/stream1", "10.0.0.5_554_stream1"),
        ("3", "webcam3"),
        ("my clip (1).avi", "my_clip_1"),
    ],
)
def test_camera_names_come_from_sources(source: str, name: str) -> None:
    assert camera_name(source) == name


def test_usage_errors_exit_2_with_a_message(tmp_path: Path, capsys) -> None:
    assert main([]) == 2 and "commands:" in capsys.readouterr().out
    assert main(["--help"]) == 0
    printed = capsys.readouterr().out
    assert all(f"  {name} " in printed for name in COMMANDS)
    assert main(["frobnicate"]) == 2 and "unknown command 'frobnicate'" in capsys.readouterr().err
    assert main(["run"]) == 2 and "SOURCE" in capsys.readouterr().err
    proc = mcpa("run", "--cameras", str(SAMPLES / "cam0.mp4"))
    assert proc.returncode == 2 and "give it as a SOURCE: mcpa run" in proc.stderr and "Traceback" not in proc.stderr
    binary = tmp_path / "cams.yaml"
    binary.write_bytes((SAMPLES / "cam0.mp4").read_bytes()[:4096])
    proc = mcpa("run", "--cameras", str(binary))
    assert proc.returncode == 2 and "expected a YAML text file" in proc.stderr and "Traceback" not in proc.stderr
    proc = mcpa("run", str(tmp_path / "missing.mp4"), "--weights", "bgsub")
    assert proc.returncode == 2 and "missing.mp4" in proc.stderr


def test_every_command_has_help() -> None:
    for name in COMMANDS:
        proc = mcpa(name, "--help")
        assert proc.returncode == 0 and "usage:" in proc.stdout, name


def test_tracks_manifest_and_tracklets_share_one_tracklet_id(quick_run) -> None:
    out, _ = quick_run
    with open(out / "tracks.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    owner, gid_of = {}, {}
    for r in rows:
        key = (r["camera_id"], r["track_id"])
        assert owner.setdefault(r["tracklet_id"], key) == key  # one tracklet id: one camera's track
        assert gid_of.setdefault(r["tracklet_id"], r["global_id"]) == r["global_id"]  # one final id per tracklet
    saved = np.load(out / "tracklets.npz")
    npz = {str(k): (str(c), str(t)) for k, c, t in zip(saved["tracklet_id"], saved["camera_id"], saved["track_id"])}
    parent_of = dict(zip(saved["tracklet_id"].tolist(), saved["split_parent"].tolist()))
    assert set(owner) == set(npz) and all(npz[k] == owner[k] for k in owner)
    with open(out / "crops" / "manifest.csv", newline="") as fh:
        for crop in csv.DictReader(fh):
            assert owner[crop["tracklet_id"]] == (crop["camera_id"], crop["track_id"])
            assert crop["global_id"] == gid_of[crop["tracklet_id"]]
            # named when written: by its tracklet, or by the one it was cut from if written before the cut
            named = int(crop["path"].split("/")[-1][1:7])
            assert named in (int(crop["tracklet_id"]), parent_of.get(int(crop["tracklet_id"])))
