"""Golden end-to-end run of the main job on the shipped rendered samples, and the CLI's error path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.evaluation.evaluate import evaluate_paths

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "sample_videos"
OSNET = REPO.parent / "shared" / "weights" / "osnet_x0_25_msmt17.pth"


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("samples") / "run"
    cmd = [sys.executable, "-m", "pipeline.run", "--cameras", str(SAMPLES / "cams.yaml"), "--out", str(out)]
    proc = subprocess.run(cmd + ["--no-progress"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "done:" in proc.stdout
    return out


def test_sample_run_writes_the_documented_layout(sample_run: Path) -> None:
    for rel in ("tracks.csv", "tracks.jsonl", "summary.json", "mot/cam0.txt", "mot/cam1.txt", "mot/cam2.txt"):
        assert (sample_run / rel).is_file(), rel
    summary = json.loads((sample_run / "summary.json").read_text())
    assert summary["frames"] == 750 and not summary["interrupted"]
    assert {c: s["frames"] for c, s in summary["cameras"].items()} == {"cam0": 250, "cam1": 250, "cam2": 250}


def test_sample_run_tracks_every_camera_well(sample_run: Path) -> None:
    result = evaluate_paths(SAMPLES / "gt", sample_run)
    for camera, metrics in result["cameras"].items():
        assert metrics["IDF1"] >= 0.9, (camera, metrics["IDF1"])
        assert metrics["MOTA"] >= 0.85, (camera, metrics["MOTA"])


@pytest.fixture(scope="module")
def osnet_sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same cams.yaml (threshold auto) with a learned embedder instead of the classical one."""
    if not OSNET.is_file():
        pytest.skip(f"OSNet weights not found: {OSNET} (the shared folder beside the checkout)")
    out = tmp_path_factory.mktemp("samples_osnet") / "run"
    cmd = [sys.executable, "-m", "pipeline.run", "--cameras", str(SAMPLES / "cams.yaml"), "--out", str(out),
           "--reid", str(OSNET), "--reid-arch", "osnet_x0_25", "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_learned_embedder_links_the_samples_at_auto(osnet_sample_run: Path) -> None:
    result = evaluate_paths(SAMPLES / "gt", osnet_sample_run / "mot_global")
    assert result["multicamera"]["idf1"] >= 0.9, result["multicamera"]
    linking = json.loads((osnet_sample_run / "summary.json").read_text())["identities"]["linking"]
    assert "halves" in linking["offline_calibration"]  # fitted on the run's evidence, not the prior
    assert linking["online_handover"].startswith("hand-over timing")  # what timing the run learned, said
    assert linking["offline_handover"].startswith("hand-over timing")


def test_sample_run_links_people_across_cameras(sample_run: Path) -> None:
    result = evaluate_paths(SAMPLES / "gt", sample_run / "mot_global")
    assert result["multicamera"]["idf1"] >= 0.9, result["multicamera"]
    per_camera_only = evaluate_paths(SAMPLES / "gt", sample_run / "mot")["multicamera"]["idf1"]
    assert result["multicamera"]["idf1"] > per_camera_only + 0.2  # linking is what lifts it
    identities = json.loads((sample_run / "identities.json").read_text())
    assert sum(len(i["cameras"]) > 1 for i in identities) >= 6  # all 8 people cross cameras; allow slack
    assert (sample_run / "identities" / "index.html").is_file()
    assert all((sample_run / "identities" / f"{i['global_id']}.png").is_file() for i in identities)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("cameras: []\n", "cameras: expected at least one camera"),
        ("cameras:\n  - {id: a, source: missing.mp4}\n", "file or folder not found"),
        (
            "cameras:\n  - {id: a, source: 0}\ntracker: {kind: bytetrack, buffer: 3}\n",
            "Non-existent config key: tracker.buffer",
        ),
        (
            "cameras:\n  - {id: a, source: 0}\ndetector: {backend: bgsub}\ntracker: {params: {buffer: 3}}\n",
            "tracker.params.buffer: not a bytetrack parameter",
        ),
    ],
)
def test_cli_rejects_bad_config_with_exit_code_2(tmp_path: Path, yaml_text: str, message: str) -> None:
    cams = tmp_path / "cams.yaml"
    cams.write_text(yaml_text)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.run", "--cameras", str(cams), "--out", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()
