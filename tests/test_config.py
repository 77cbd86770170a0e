"""Config loading: every bad key, type, range and file fails before work starts, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from configs import ConfigError, config_from_dict, load_config


@pytest.fixture
def video(tmp_path: Path) -> Path:
    path = tmp_path / "cam.mp4"
    path.write_bytes(b"not checked here")
    return path


def cfg(video: Path, **sections) -> dict:
    base = {"cameras": [{"id": "c0", "source": str(video)}], "detector": {"backend": "bgsub"}}
    base.update(sections)
    return base


def test_minimal_config_has_defaults(video: Path) -> None:
    c = config_from_dict(cfg(video))
    assert c.cameras[0].id == "c0" and c.cameras[0].stride == 1 and c.cameras[0].kind == "file"
    assert c.tracker.kind == "bytetrack" and c.outputs.mot and not c.outputs.video
    assert c.tracker.thresholds == "auto" and c.tracker.params == {} and c.detector.confidence == 0.1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"tracker": {"buffer": 3}}, "Non-existent config key: tracker.buffer"),
        ({"detektor": {}}, "Non-existent config key: detektor"),
        ({"tracker": {"kind": "sort9"}}, "tracker.kind: expected one of"),
        ({"tracker": {"thresholds": "magic"}}, "tracker.thresholds: expected one of"),
        ({"detector": {"backend": "bgsub", "confidence": 1.5}}, "detector.confidence: expected a value in [0.0, 1.0]"),
        ({"detector": {"backend": "bgsub", "image_size": "big"}}, "detector.image_size: expected an integer"),
        ({"detector": {"backend": "bgsub", "bgsub": {"aspect": [3, 1]}}}, "detector.bgsub.aspect"),
        ({"detector": {"backend": "ultralytics"}}, "detector.weights: required"),
        (
            {"detector": {"backend": "ultralytics", "weights": "/nope/model_openvino_model"}},
            "file or folder not found: /nope",
        ),
        ({"cameras": []}, "cameras: expected at least one camera"),
        ({"cameras": "cam.mp4"}, "cameras: expected a list"),
        ({"cameras": [{"id": "c0"}]}, "cameras[0].source: required key is missing"),
        ({"cameras": [{"id": "c0", "source": "/missing.mp4"}]}, "cameras[0].source: file or folder not found"),
        ({"cameras": [{"id": "c 0", "source": 0}]}, "cameras[0].id: expected letters"),
        ({"cameras": [{"id": "c0", "source": 0, "stride": 0}]}, "cameras[0].stride: expected a value in [1, 1000]"),
        ({"cameras": [{"id": "c0", "source": 0, "roi": [0, 0, 10]}]}, "cameras[0].roi: expected 4 items"),
        ({"cameras": [{"id": "c0", "source": 0, "roi": [50, 0, 10, 10]}]}, "cameras[0].roi: expected [x1, y1, x2, y2]"),
        ({"cameras": [{"id": "c0", "source": 0, "fps": 0}]}, "cameras[0].fps: expected a value in (0.0, inf]"),
        ({"cameras": [{"id": "a", "source": 0}, {"id": "a", "source": 1}]}, "cameras[1].id: duplicate camera id 'a'"),
        ({"outputs": {"video": "yes"}}, "outputs.video: expected true or false"),
        ({"sources": {"queue_size": 0}}, "sources.queue_size"),
        ({"sources": {"frame_timeout": 0}}, "sources.frame_timeout: expected a value in [0.1, 3600.0], got 0"),
        ({"sources": {"open_timeout": "soon"}}, "sources.open_timeout"),
        ({"embed": {"backend": "tensorrt"}}, "embed.backend: expected one of ['auto', 'torch', 'onnx', 'openvino']"),
        ({"embed": {"every_k": 5, "max_every_k": 4}}, "embed.max_every_k: expected >= embed.every_k (5), got 4"),
        ({"embed": {"slow_after": -1}}, "embed.slow_after: expected a value in [0, 100000], got -1"),
        ({"embed": {"overlap": "yes"}}, "embed.overlap: expected true or false"),
        ({"embed": {"threads": 0}}, "embed.threads: expected a value in [1, 1024], got 0"),
    ],
)
def test_bad_config_names_the_key(video: Path, patch: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_from_dict(cfg(video, **patch))
    assert message in str(err.value)


def test_relative_paths_resolve_against_yaml_folder(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"x")
    (tmp_path / "frames").mkdir()
    (tmp_path / "cams.yaml").write_text(
        yaml.safe_dump(
            {
                "cameras": [
                    {"id": "a", "source": "clips/a.mp4"},
                    {"id": "b", "source": "frames"},
                    {"id": "live", "source": "rtsp://127.0.0.1:8554/x"},
                    {"id": "web", "source": 0},
                ],
                "detector": {"backend": "bgsub"},
            }
        )
    )
    c = load_config(tmp_path / "cams.yaml")
    kinds = {cam.id: cam.kind for cam in c.cameras}
    assert kinds == {"a": "file", "b": "folder", "live": "stream", "web": "webcam"}
    assert Path(c.cameras[0].source) == (tmp_path / "clips" / "a.mp4").resolve()


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="camera config not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("cameras: [\n  - id: a\n   source: x")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listy)


def test_tracker_params_pass_through(video: Path) -> None:
    c = config_from_dict(cfg(video, tracker={"kind": "ocsort", "params": {"lost_track_buffer": 60}}))
    assert c.tracker.params == {"lost_track_buffer": 60}


def test_shipped_configs_load(shared) -> None:
    repo = Path(__file__).resolve().parents[1]
    shared("data/pets09_s2l1/vtest.avi")
    shared("weights/yolov8n_int8_openvino_model")
    c = load_config(repo / "configs" / "pets09.yaml")
    assert c.detector.backend == "ultralytics" and c.cameras[0].kind == "file"
