"""``python -m pipeline.run`` exit codes and messages: failed cameras, unwritable outputs, corrupt inputs."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from pipeline.run import main

W, H = 96, 64


def video(path: Path, n: int = 6) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for i in range(n):
        writer.write(np.full((H, W, 3), (20 * i) % 256, np.uint8))
    writer.release()
    return path


def cams_yaml(tmp_path: Path, cameras: list[dict], **sections) -> Path:
    cfg = {"cameras": cameras, "detector": {"backend": "bgsub"}, **sections}
    path = tmp_path / "cams.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_cli(cfg: Path, out: Path, *extra: str) -> int:
    return main(["--cameras", str(cfg), "--out", str(out), "--no-progress", "--no-reid", *extra])


def test_a_camera_that_never_produced_a_frame_exits_4_and_is_named(tmp_path: Path, capsys) -> None:
    dead = {"id": "door", "source": "rtsp://127.0.0.1:9/cam"}
    cfg = cams_yaml(tmp_path, [{"id": "hall", "source": str(video(tmp_path / "a.avi"))}, dead],
                    sources={"reconnect_attempts": 1, "reconnect_backoff": 0.05})  # fmt: skip
    assert run_cli(cfg, tmp_path / "run") == 4
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert list(summary["failed_cameras"]) == ["door"] and summary["cameras"]["door"]["failed"]
    assert summary["cameras"]["hall"] | {"tracker_thresholds": None} == summary["cameras"]["hall"] | {
        "frames": 6, "failed": False, "error": None, "disconnects": 0, "frame_age_s": None,
        "tracker_thresholds": None,
    }  # fmt: skip
    assert "camera door failed: gave up after 1 reconnect attempts" in capsys.readouterr().err


def test_a_clean_run_exits_0(tmp_path: Path) -> None:
    cfg = cams_yaml(tmp_path, [{"id": "hall", "source": str(video(tmp_path / "a.avi"))}])
    assert run_cli(cfg, tmp_path / "run") == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["failed_cameras"] == {}


def deny_writes_under(folder: Path, monkeypatch) -> None:
    """What a read-only folder does to a non-root user (root ignores the mode bits, so refuse its opens)."""
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() != 0:
        return
    real_open = os.open

    def refusing_open(path, flags, *args, **kwargs):
        if Path(path).resolve().is_relative_to(folder) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)


def test_read_only_output_folder_exits_2_naming_it(tmp_path: Path, monkeypatch, capsys) -> None:
    cfg = cams_yaml(tmp_path, [{"id": "hall", "source": str(video(tmp_path / "a.avi"))}])
    out = tmp_path / "locked"
    deny_writes_under(out, monkeypatch)
    try:
        assert run_cli(cfg, out) == 2
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    assert (
        f"output folder {out}" in err and "Permission denied" in err and "expected a folder this user can write" in err
    )
    assert "Traceback" not in err


def test_full_output_folder_exits_2_naming_the_file(tmp_path: Path, capsys) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("/dev/full is needed to fill a file")
    cfg = cams_yaml(tmp_path, [{"id": "hall", "source": str(video(tmp_path / "a.avi", 30))}])
    out = tmp_path / "run"
    out.mkdir()
    (out / "tracks.csv").symlink_to("/dev/full")  # every write to tracks.csv fails with ENOSPC
    assert main(["--cameras", str(cfg), "--out", str(out), "--no-progress", "--no-reid"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "tracks.csv" in err and "expected a writable folder" in err


@pytest.mark.parametrize(
    "content", [np.random.default_rng(0).bytes(3000), b"PK\x03\x04" + bytes(100), b""], ids=["random", "zip", "empty"]
)
def test_corrupt_gallery_exits_2_naming_it(tmp_path: Path, content: bytes, capsys) -> None:
    gallery = tmp_path / "gallery.npz"
    gallery.write_bytes(content)
    cfg = cams_yaml(tmp_path, [{"id": "hall", "source": str(video(tmp_path / "a.avi"))}],
                    linking={"gallery": {"load": str(gallery)}})  # fmt: skip
    code = main(["--cameras", str(cfg), "--out", str(tmp_path / "run"), "--no-progress", "--reid", "classical"])
    err = capsys.readouterr().err
    assert code == 2 and f"{gallery}: not a readable gallery file" in err and "pickle" not in err
    assert not (tmp_path / "run" / "summary.json").exists()


def test_corrupt_checkpoint_exits_2_naming_it(tmp_path: Path, capsys) -> None:
    weights = tmp_path / "model.pth"
    weights.write_bytes(os.urandom(2000))
    cfg = cams_yaml(tmp_path, [{"id": "hall", "source": str(video(tmp_path / "a.avi"))}])
    code = main(["--cameras", str(cfg), "--out", str(tmp_path / "run"), "--no-progress", "--reid", str(weights)])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot read checkpoint {weights}" in err
