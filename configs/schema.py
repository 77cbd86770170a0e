"""Typed, validated configuration of a pipeline run (``cams.yaml``).

Every section is a frozen dataclass; :func:`load_config` parses YAML, rejects unknown keys, wrong types
and out-of-range values with the dotted key path, resolves relative paths against the YAML file's folder
and checks that every file it names exists, all before any work starts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from configs.validate import ConfigError, build, field, in_range, read_yaml_mapping

STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_CAMERA_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class CameraConfig:
    """One camera. ``source``: video file, stream URL, webcam index (int) or a folder of images."""

    id: str
    source: str | int
    fps: float | None = field(None, check=in_range(0.0, None, low_open=True))
    stride: int = field(1, check=in_range(1, 1000))
    roi: tuple[int, int, int, int] | None = None
    crop: tuple[int, int, int, int] | None = None
    max_frames: int | None = field(None, check=in_range(1, None))

    @property
    def kind(self) -> Literal["webcam", "stream", "folder", "file"]:
        if isinstance(self.source, int):
            return "webcam"
        if self.source.lower().startswith(STREAM_SCHEMES):
            return "stream"
        return "folder" if Path(self.source).is_dir() else "file"


@dataclass(frozen=True)
class BgSubConfig:
    """Weight-free background-subtraction detector for static cameras."""

    method: Literal["mog2", "knn"] = "mog2"
    history: int = field(300, check=in_range(1, 100000))
    var_threshold: float = field(25.0, check=in_range(0.0, None, low_open=True))
    detect_shadows: bool = True
    warmup_frames: int = field(0, check=in_range(0, 100000))
    kernel: int = field(3, check=in_range(1, 51))
    min_area: int = field(150, check=in_range(1, None))
    min_height: int = field(16, check=in_range(1, None))
    max_area_fraction: float = field(0.25, check=in_range(0.0, 1.0, low_open=True))
    aspect: tuple[float, float] = (0.9, 6.0)


@dataclass(frozen=True)
class DetectorConfig:
    """Detector backend and its parameters. ``classes`` are COCO ids (0 = person)."""

    backend: Literal["ultralytics", "bgsub"] = "ultralytics"
    weights: str | None = None
    # Low on purpose: boxes under the tracker's thresholds still feed ByteTrack's second (low-score) pass; the
    # tracker decides what becomes a track (as Ultralytics' model.track, which also detects at 0.1).
    confidence: float = field(0.1, check=in_range(0.0, 1.0))
    iou: float = field(0.7, check=in_range(0.0, 1.0))
    image_size: int = field(640, check=in_range(32, 4096))
    classes: tuple[int, ...] = (0,)
    device: str = "auto"
    half: bool = False
    bgsub: BgSubConfig = field(default_factory=BgSubConfig)


@dataclass(frozen=True)
class TrackerConfig:
    """One tracker per camera from the ``trackers`` package; ``params`` go to its constructor.

    ``thresholds: auto`` sets the score thresholds per camera from its recent detection scores
    (``pipeline.tracking``); ``fixed`` keeps the tracker's defaults. A threshold in ``params`` is never adapted.
    """

    kind: Literal["bytetrack", "botsort", "ocsort"] = "bytetrack"
    thresholds: Literal["auto", "fixed"] = "auto"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceOptions:
    """Reader behaviour shared by all cameras.

    ``open_timeout`` (s) bounds every attempt to open a live stream; ``frame_timeout`` (s) is how long a live
    stream may go without a frame before it counts as lost and is reconnected. ``queue_size`` buffers file
    cameras only: a live camera keeps just its newest frame. ``decode_threads``: FFmpeg decoding threads of
    each video-file camera (0: FFmpeg's own choice; every camera already decodes on its own thread, so 1
    avoids oversubscribing a small machine when several cameras run).
    """

    queue_size: int = field(16, check=in_range(1, 10000))
    reconnect_attempts: int = field(5, check=in_range(0, 1000000))
    reconnect_backoff: float = field(1.0, check=in_range(0.0, 3600.0))
    reconnect_backoff_max: float = field(30.0, check=in_range(0.0, 3600.0))
    max_consecutive_failures: int = field(25, check=in_range(1, 1000000))
    open_timeout: float = field(10.0, check=in_range(0.1, 3600.0))
    frame_timeout: float = field(5.0, check=in_range(0.1, 3600.0))
    decode_threads: int = field(0, check=in_range(0, 64))


@dataclass(frozen=True)
class OutputConfig:
    """What a run writes under its output folder."""

    dir: str | None = None
    mot: bool = True
    video: bool = False
    crops: bool = False
    crop_every: int = field(5, check=in_range(1, 10000))
    crop_min_height: int = field(32, check=in_range(1, 10000))
    progress: bool = True


@dataclass(frozen=True)
class EmbedConfig:
    """ReID embedding of tracked boxes: which model, and which boxes are worth a crop."""

    weights: str = "classical"
    arch: str | None = None
    device: str = "auto"
    # auto: torch on CUDA when a GPU is usable, else OpenVINO (the detector's runtime) on CPU (reid.embedder)
    backend: Literal["auto", "torch", "onnx", "openvino"] = "auto"
    # openvino only: auto = bf16 on CPUs with bf16 units (AMX / AVX512-BF16), else f32 (reid.embedder)
    precision: Literal["auto", "f32", "bf16"] = "auto"
    flip: bool = False
    batch_size: int = field(64, check=in_range(1, 4096))
    min_height: int = field(48, check=in_range(1, 10000))
    min_width: int = field(16, check=in_range(1, 10000))
    max_overlap: float = field(0.4, check=in_range(0.0, 1.0))
    every_k: int = field(3, check=in_range(1, 10000))
    # a track's crops beyond slow_after come ever less often, up to every max_every_k frames (0: every_k for good)
    slow_after: int = field(10, check=in_range(0, 100000))
    max_every_k: int = field(24, check=in_range(1, 100000))
    # embed and link batch k on a worker thread while batch k+1 is detected (same ids as inline)
    overlap: bool = True
    # consecutive batches are held until they hold this many camera frames, then embedded in one call and
    # linked in order (same ids; fewer, fuller embedder calls; ids reach the stream this many frames later)
    group_frames: int = field(16, check=in_range(1, 4096))
    # with a live camera in the run, a group also goes once its first batch has waited this long (seconds)
    group_max_s: float = field(0.5, check=in_range(0.0, 3600.0))
    # inference threads of the openvino / onnx backends (null: the runtime's default, every core); 1 leaves the
    # other cores to the detector, which the embedding overlaps
    threads: int | None = field(1, check=in_range(1, 1024))


@dataclass(frozen=True)
class TransitWindow:
    """Seconds a person needs between two cameras (either direction unless the other has its own)."""

    cameras: tuple[str, str]
    min_s: float = field(0.0, check=in_range(0.0, None))
    max_s: float = field(3600.0, check=in_range(0.0, None))


@dataclass(frozen=True)
class GalleryConfig:
    """The shared gallery of global identities."""

    index: Literal["auto", "flat", "ivf"] = "auto"
    device: str = "auto"
    expiry_s: float | None = field(None, check=in_range(0.0, None, low_open=True))
    max_identities: int | None = field(None, check=in_range(1, None))
    load: str | None = None


@dataclass(frozen=True)
class LinkingConfig:
    """Online linking of mature tracklets to global ids, and the optional offline re-clustering.

    ``threshold`` / ``offline_threshold``: "auto" (fitted on the run's own evidence, see
    ``reid/calibration.py``) or a cosine similarity that overrides it.
    """

    threshold: float | Literal["auto"] = field("auto", check=in_range(-1.0, 1.0))
    margin: float = field(0.05, check=in_range(0.0, 2.0))
    min_crops: int = field(3, check=in_range(1, 10000))
    revise_until_crops: int = field(10, check=in_range(0, 100000))
    tracklet_timeout_s: float = field(5.0, check=in_range(0.0, None, low_open=True))
    transit: tuple[TransitWindow, ...] = ()
    gallery: GalleryConfig = field(default_factory=GalleryConfig)
    offline: bool = False
    offline_threshold: float | Literal["auto"] = field("auto", check=in_range(-1.0, 1.0))
    rerank: bool = False
    center_cameras: bool = True
    calibration_fraction: float = field(0.6, check=in_range(0.0, 0.99, low_open=True))
    consistent_threshold: bool = True  # offline auto: raised to where the nearest outsiders sit (reid/consistency.py)
    restitch_window_s: float = field(5.0, check=in_range(0.0, None))
    split_switches: bool = True  # cut a tracklet whose latest crops look like a stranger to the rest of it
    handover: bool = True  # learn the cameras' hand-over timing from the run (reid/handover.py)
    handoffs: bool = True  # adjacent views that hand people over: must-links, one camera (pipeline/identity/handoff.py)


@dataclass(frozen=True)
class PipelineConfig:
    """A whole run: cameras, detector, tracker, readers and outputs."""

    cameras: tuple[CameraConfig, ...]
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    sources: SourceOptions = field(default_factory=SourceOptions)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    embed: EmbedConfig | None = None
    linking: LinkingConfig = field(default_factory=LinkingConfig)
    path: str | None = None


def load_config(path: str | Path) -> PipelineConfig:
    """Read, validate and resolve ``path`` (YAML). Raises FileNotFoundError or ConfigError."""
    path = Path(path)
    raw = read_yaml_mapping(path, "camera config")
    return config_from_dict(raw, base_dir=path.parent, origin=str(path))


def config_from_dict(raw: dict[str, Any], base_dir: Path | None = None, origin: str | None = None) -> PipelineConfig:
    """Validate a parsed config; relative paths resolve against ``base_dir`` (default: cwd)."""
    raw = dict(raw)
    if "path" in raw:
        raise ConfigError("Non-existent config key: path (it is set from the file name)")
    cfg: PipelineConfig = build(PipelineConfig, raw, "")
    base = Path.cwd() if base_dir is None else Path(base_dir)
    cameras = tuple(_resolve_camera(cam, base, f"cameras[{i}]") for i, cam in enumerate(cfg.cameras))
    _check_cameras(cameras)
    detector = resolve_detector(cfg.detector, base)
    _check_linking(cfg.linking, {c.id for c in cameras})
    embed = cfg.embed
    if embed is not None and embed.max_every_k < embed.every_k:
        raise ConfigError(f"embed.max_every_k: expected >= embed.every_k ({embed.every_k}), got {embed.max_every_k}")
    if embed is not None and embed.weights != "classical":
        embed = replace(embed, weights=_existing_path(embed.weights, base, "embed.weights"))
    linking = cfg.linking
    if linking.gallery.load is not None:
        gallery = replace(linking.gallery, load=_existing_path(linking.gallery.load, base, "linking.gallery.load"))
        linking = replace(linking, gallery=gallery)
    outputs = cfg.outputs
    if outputs.dir is not None and not Path(outputs.dir).is_absolute():
        outputs = replace(outputs, dir=str(Path.cwd() / outputs.dir))
    return replace(cfg, cameras=cameras, detector=detector, outputs=outputs, embed=embed, linking=linking, path=origin)


def _existing_path(value: str, base: Path, key: str) -> str:
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        raise ConfigError(f"{key}: file not found: {path}")
    return str(path.resolve())


def _check_linking(linking: LinkingConfig, camera_ids: set[str]) -> None:
    for i, window in enumerate(linking.transit):
        key = f"linking.transit[{i}]"
        unknown = [c for c in window.cameras if c not in camera_ids]
        if unknown:
            raise ConfigError(f"{key}.cameras: unknown camera {unknown[0]!r}; expected ids from {sorted(camera_ids)}")
        if window.cameras[0] == window.cameras[1]:
            raise ConfigError(f"{key}.cameras: expected two different cameras, got {list(window.cameras)}")
        if window.min_s > window.max_s:
            raise ConfigError(f"{key}: expected min_s <= max_s, got min_s={window.min_s} > max_s={window.max_s}")


def _resolve_camera(cam: CameraConfig, base: Path, key: str) -> CameraConfig:
    if not _CAMERA_ID.match(cam.id):
        raise ConfigError(f"{key}.id: expected letters, digits, '_', '-' or '.', got {cam.id!r}")
    if cam.roi is not None:
        x1, y1, x2, y2 = cam.roi
        if x1 < 0 or y1 < 0 or x2 <= x1 or y2 <= y1:
            raise ConfigError(
                f"{key}.roi: expected [x1, y1, x2, y2] with 0 <= x1 < x2 and 0 <= y1 < y2, got {list(cam.roi)}"
            )
    if isinstance(cam.source, int):
        if cam.source < 0:
            raise ConfigError(f"{key}.source: expected a webcam index >= 0, got {cam.source}")
        return cam
    if not cam.source.strip():
        raise ConfigError(f"{key}.source: expected a file, folder, URL or webcam index, got an empty string")
    if cam.source.lower().startswith(STREAM_SCHEMES):
        return cam
    source = Path(cam.source).expanduser()
    if not source.is_absolute():
        source = base / source
    if not source.exists():
        raise ConfigError(f"{key}.source: file or folder not found: {source}")
    return replace(cam, source=str(source.resolve()))


def _check_cameras(cameras: tuple[CameraConfig, ...]) -> None:
    if not cameras:
        raise ConfigError("cameras: expected at least one camera, got an empty list")
    seen: set[str] = set()
    for i, cam in enumerate(cameras):
        if cam.id in seen:
            raise ConfigError(f"cameras[{i}].id: duplicate camera id {cam.id!r}; ids must be unique")
        seen.add(cam.id)


def resolve_detector(det: DetectorConfig, base: Path) -> DetectorConfig:
    lo, hi = det.bgsub.aspect
    if not 0 < lo <= hi:
        raise ConfigError(
            f"detector.bgsub.aspect: expected [min, max] height/width with 0 < min <= max, got {[lo, hi]}"
        )
    if det.backend == "bgsub":
        return det
    if det.weights is None:
        raise ConfigError(
            "detector.weights: required for backend 'ultralytics' (a .pt, .onnx, OpenVINO folder or .engine)"
        )
    weights = Path(det.weights).expanduser()
    if not weights.is_absolute() and (base / weights).exists():
        weights = base / weights
    if weights.exists():
        return replace(det, weights=str(weights.resolve()))
    if weights.suffix == ".pt" and len(weights.parts) == 1:
        # A bare hub name such as 'yolo11n.pt': ultralytics downloads it on a connected machine.
        return det
    raise ConfigError(f"detector.weights: file or folder not found: {weights}")
