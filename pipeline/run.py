"""``python -m pipeline.run --cameras cams.yaml`` or ``mcpa run SOURCE [SOURCE ...]``: run the streaming
pipeline over every camera.

Without a YAML, each SOURCE (a video file, an image folder, a stream URL or a webcam index) is one camera,
named after it (file stem, folder name, URL host and path, ``webcam<N>``), detected with ``--weights``
(default ``yolov8n.pt``; ``bgsub`` for the weight-free background-subtraction detector) and linked across
cameras with ``--reid`` (default ``classical``). Every other setting is the YAML's default.

This module only parses arguments and wires stages; the loop lives in :mod:`pipeline.engine`.

Exit codes:
    0  done: every camera produced frames (also after Ctrl-C: outputs flushed, summary written)
    1  an unexpected error (a bug): the traceback is printed
    2  bad config or input, or outputs that cannot be written: an unreadable file, a corrupt gallery
       (``linking.gallery.load``) or ReID checkpoint, a read-only or full output folder; the message names the
       file and what was expected
    4  the run finished but a camera failed for good: it gave up reconnecting, stopped on an error, or never
       produced a frame; ``summary.json`` lists it under ``failed_cameras`` with the reason
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from configs import ConfigError, DetectorConfig, EmbedConfig, PipelineConfig, config_from_dict, load_config
from configs.schema import STREAM_SCHEMES, resolve_detector
from pipeline.tracking import TRACKER_KINDS
from reid.console import setup_logging

log = logging.getLogger("pipeline.run")

DEFAULT_WEIGHTS = "yolov8n.pt"  # a hub name: ultralytics downloads it on a connected machine


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.run",
        description="Detect, track and export people from several cameras at once.",
    )
    p.add_argument(
        "sources", nargs="*", metavar="SOURCE",
        help="video files, image folders, stream URLs or webcam indices, one camera each (instead of --cameras)",
    )  # fmt: skip
    p.add_argument("--cameras", type=Path, default=None, help="camera config YAML (see README: Config reference)")
    p.add_argument(
        "--weights", default=None,
        help=f"detector weights (.pt, .onnx, OpenVINO folder, .engine) or 'bgsub'; with SOURCEs: {DEFAULT_WEIGHTS}",
    )  # fmt: skip
    p.add_argument("--tracker", choices=TRACKER_KINDS, default=None, help="tracker (default: bytetrack)")
    p.add_argument("--conf", type=float, default=None, help="detector confidence threshold (default: 0.1)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: outputs.dir or runs/<timestamp>)")
    p.add_argument("--video", action="store_true", help="also write annotated videos to OUT/videos/")
    p.add_argument("--crops", action="store_true", help="also harvest crops to OUT/crops/ with manifest.csv")
    p.add_argument("--max-frames", type=int, default=None, help="stop each camera after this many frames")
    p.add_argument("--device", default=None, help="detector device override: auto, cpu, cuda:0")
    p.add_argument(
        "--reid",
        default=None,
        metavar="WEIGHTS",
        help="embed and link across cameras with this ReID model: 'classical', a checkpoint or .onnx "
        "(with SOURCEs: classical)",
    )
    p.add_argument("--reid-arch", default=None, help="architecture of a torchreid zoo file given to --reid")
    p.add_argument("--no-reid", action="store_true", help="no embedding or cross-camera linking")
    p.add_argument("--offline", action="store_true", help="re-cluster all tracklets globally at the end of the run")
    p.add_argument(
        "--threshold",
        default=None,
        help="link threshold, online and offline: 'auto' (fitted on the run's own evidence, the default) or a "
        "cosine similarity in [-1, 1]",
    )
    p.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="local: one process (default); ray: camera-group workers and one identity service on Ray",
    )  # fmt: skip
    p.add_argument("--address", default=None, help="with --engine ray: HOST:PORT of a running Ray cluster "
                   "(default: start a local one)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="with --engine ray: camera-group workers (default: 2)")
    p.add_argument("--shared-embedder", action="store_true",
                   help="with --engine ray: one ReID model actor (on a GPU when the cluster has one) embeds for "
                   "every worker, batching their crops")  # fmt: skip
    p.add_argument("--checkpoint-s", type=float, default=10.0,
                   help="with --engine ray: seconds between identity-service checkpoints (default: 10)")  # fmt: skip
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = p.parse_args(argv)
    if (args.cameras is None) == (not args.sources):
        p.error("give either SOURCE ... (one camera each) or --cameras CAMS.yaml")
    return args


def camera_name(source: str) -> str:
    """A camera id for ``source``: file stem, folder name, URL host and path, or ``webcam<N>``."""
    if source.isdigit():
        return f"webcam{source}"
    if source.lower().startswith(STREAM_SCHEMES):
        rest = source.split("://", 1)[1].rsplit("@", 1)[-1]  # no credentials in the id
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", rest).strip("_.")
    else:
        path = Path(source.rstrip("/"))
        name = path.stem if path.suffix else path.name
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")
    return name or "camera"


def sources_config(args: argparse.Namespace) -> PipelineConfig:
    """The config of a run given as SOURCEs: one camera each, the YAML's defaults for everything else."""
    names: dict[str, int] = {}
    cameras = []
    for source in args.sources:
        name = camera_name(source)
        names[name] = names.get(name, 0) + 1
        if names[name] > 1:
            name = f"{name}-{names[name]}"
        cameras.append({"id": name, "source": int(source) if source.isdigit() else source})
    raw: dict = {"cameras": cameras, "detector": {"backend": "bgsub"}}
    if not args.no_reid:
        raw["embed"] = {"weights": args.reid or "classical", "arch": args.reid_arch}
    config = config_from_dict(raw)
    return dataclasses.replace(config, detector=with_weights(config.detector, args.weights or DEFAULT_WEIGHTS))


def with_weights(detector: DetectorConfig, weights: str) -> DetectorConfig:
    """``detector`` with ``--weights``: 'bgsub' selects background subtraction, anything else ultralytics."""
    if weights == "bgsub":
        return dataclasses.replace(detector, backend="bgsub")
    return resolve_detector(dataclasses.replace(detector, backend="ultralytics", weights=weights), Path.cwd())


def apply_overrides(config: PipelineConfig, args: argparse.Namespace) -> PipelineConfig:
    """Command-line flags win over the YAML."""
    outputs = config.outputs
    if args.video or args.crops:
        outputs = dataclasses.replace(outputs, video=outputs.video or args.video, crops=outputs.crops or args.crops)
    if args.no_progress:
        outputs = dataclasses.replace(outputs, progress=False)
    cameras = config.cameras
    if args.max_frames is not None:
        if args.max_frames < 1:
            raise ConfigError(f"--max-frames: expected an integer >= 1, got {args.max_frames}")
        cameras = tuple(dataclasses.replace(c, max_frames=args.max_frames) for c in cameras)
    detector = config.detector
    if args.device:
        detector = dataclasses.replace(detector, device=args.device)
    if args.weights is not None and not args.sources:  # with SOURCEs, sources_config chose the detector
        detector = with_weights(detector, args.weights)
    if args.conf is not None:
        if not 0.0 <= args.conf <= 1.0:
            raise ConfigError(f"--conf: expected a confidence in [0, 1], got {args.conf}")
        detector = dataclasses.replace(detector, confidence=args.conf)
    tracker = config.tracker if args.tracker is None else dataclasses.replace(config.tracker, kind=args.tracker)
    embed = config.embed
    if args.reid is not None:
        embed = dataclasses.replace(
            embed or EmbedConfig(), weights=args.reid, arch=args.reid_arch or (embed and embed.arch)
        )
        if args.reid != "classical" and not Path(args.reid).exists():
            raise FileNotFoundError(f"--reid: expected 'classical' or an existing weights file, got {args.reid}")
    if args.no_reid:
        embed = None
    linking = dataclasses.replace(config.linking, offline=config.linking.offline or args.offline)
    if args.threshold is not None:
        threshold = _threshold(args.threshold)
        linking = dataclasses.replace(linking, threshold=threshold, offline_threshold=threshold)
    return dataclasses.replace(
        config, outputs=outputs, cameras=cameras, detector=detector, tracker=tracker, embed=embed, linking=linking
    )


def _threshold(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not -1.0 <= value <= 1.0:
        raise ConfigError(f"--threshold: expected 'auto' or a cosine similarity in [-1, 1], got {text!r}")
    return value


def output_dir(config: PipelineConfig, out: Path | None) -> Path:
    if out is not None:
        return out
    if config.outputs.dir is not None:
        return Path(config.outputs.dir)
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args.log_level)
    from detectors import detector_from_config
    from pipeline.durable import check_writable_dir
    from pipeline.embed import build_embedder
    from pipeline.engine import prepare_sources, run_pipeline
    from pipeline.identity.stage import build_gallery
    from pipeline.tracking import check_params

    out_dir = args.out
    try:
        if args.cameras is not None and args.cameras.suffix.lower() not in (".yaml", ".yml", ""):
            raise ConfigError(
                f"--cameras: expected a camera YAML, got {args.cameras}; to run on a video, image folder or "
                f"stream without a YAML, give it as a SOURCE: mcpa run {args.cameras}"
            )
        base = load_config(args.cameras) if args.cameras is not None else sources_config(args)
        config = apply_overrides(base, args)
        infos = prepare_sources(config)  # fail on unreadable files or bad ROIs before loading models
        check_params(config.tracker.kind, dict(config.tracker.params))
        out_dir = output_dir(config, args.out)
        check_writable_dir(out_dir)
        if args.engine == "ray":
            return _run_ray(config, out_dir, infos, args)
        detector = detector_from_config(config.detector)
        embedder = build_embedder(config)
        gallery = None if embedder is None else build_gallery(int(embedder.embedding_dim), config.linking.gallery)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: output folder {out_dir}: {exc}; expected a folder this user can write", file=sys.stderr)
        return 2
    log.info("writing to %s", out_dir)
    return _report(lambda: run_pipeline(
        config, out_dir, detector, progress=config.outputs.progress, embedder=embedder, infos=infos, gallery=gallery,
    ))  # fmt: skip


def _report(run: Callable[[], dict]) -> int:
    """Run, print the end-of-run lines; the exit code (2: outputs not writable, 4: a camera failed)."""
    from pipeline.engine import summary_line

    try:
        summary = run()
    except OSError as exc:
        print(f"error: writing the run's outputs: {exc}; expected a writable folder with free space", file=sys.stderr)
        return 2
    print(summary_line(summary))
    return _camera_failures(summary)


def _run_ray(config: PipelineConfig, out_dir: Path, infos: dict, args: argparse.Namespace) -> int:
    """``--engine ray``: the same run on camera-group workers and one identity service."""
    from pipeline.distributed.engine import init_ray, run_ray

    if args.workers < 1 or args.checkpoint_s <= 0:
        raise ConfigError(
            f"--workers and --checkpoint-s: expected >= 1 and > 0, got {args.workers}, {args.checkpoint_s}"
        )
    init_ray(args.address)  # ConfigError (exit 2) when --address is unreachable
    log.info("writing to %s (ray engine, %d workers)", out_dir, args.workers)
    return _report(lambda: run_ray(
        config, out_dir, workers=args.workers, progress=config.outputs.progress, infos=infos,
        checkpoint_s=args.checkpoint_s, shared_embedder=args.shared_embedder,
    ))  # fmt: skip


def _camera_failures(summary: dict) -> int:
    """Exit code 4 (with one line per camera) when a camera failed for good, else 0."""
    failed = summary.get("failed_cameras", {})
    for camera_id, reason in failed.items():
        print(f"error: camera {camera_id} failed: {reason}", file=sys.stderr)
    return 4 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
