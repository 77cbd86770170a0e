"""The Python API: ``from pipeline import Pipeline``.

>>> pipe = Pipeline(["cam0.mp4", "cam1.mp4"], weights="bgsub", out="runs/api")   # or Pipeline.from_yaml(path)
>>> for result in pipe.stream():                   # one result per camera frame, as it is processed
...     result.camera_id, result.frame_index, result.timestamp
...     result.detections.tracker_id               # the camera tracker's ids
...     result.detections.data["global_id"]        # cross-camera ids at that moment (-1: not linked yet)
>>> pipe.summary                                   # what summary.json holds, once the stream has ended
>>> Pipeline.from_yaml("cams.yaml").run()          # the whole run; returns the summary

Options are the command line's flags as keyword arguments (``weights``, ``reid``, ``reid_arch``, ``no_reid``,
``tracker``, ``conf``, ``threshold``, ``offline``, ``video``, ``crops``, ``max_frames``, ``device``,
``progress``), built by the same code as ``mcpa run``, so a script and the command give the same run. The
run still writes its folder (``out``; default ``outputs.dir`` or ``runs/<timestamp>``); the ids in the
streamed detections are the live ones, the files get the final ones; with ReID on they arrive in groups,
``embed.group_frames`` camera frames behind detection (one embedder call per group). Leaving the loop early
(``break``, an exception, Ctrl-C) ends the run the way Ctrl-C does: outputs flushed, summary marked
interrupted.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv

from configs import PipelineConfig, load_config
from pipeline.records import GLOBAL_ID_KEY

_FLAG_DEFAULTS = {"progress": False}


@dataclass(frozen=True)
class FrameResult:
    """One processed camera frame: where and when, its image (BGR) and its tracked detections."""

    camera_id: str
    frame_index: int
    timestamp: float
    image: np.ndarray
    detections: sv.Detections

    @property
    def global_ids(self) -> np.ndarray:
        """(N,) int64 cross-camera ids of the boxes at this frame (-1 where not linked yet)."""
        ids = self.detections.data.get(GLOBAL_ID_KEY)
        return np.full(len(self.detections), -1, np.int64) if ids is None else np.asarray(ids, np.int64)


class Pipeline:
    """A configured run over several cameras; see the module docstring."""

    def __init__(
        self, sources: Sequence[str | int | Path] | None = None, *, config: PipelineConfig | None = None,
        out: str | Path | None = None, **options: Any,
    ) -> None:  # fmt: skip
        from pipeline.run import apply_overrides, sources_config

        if (config is None) == (not sources):
            raise ValueError("Pipeline: expected sources=[...] (one camera each) or config=, not both or neither")
        args = _options(options)
        args.sources = [str(s) for s in sources or []]
        base = config if config is not None else sources_config(args)
        self.config: PipelineConfig = apply_overrides(base, args)
        self.out = None if out is None else Path(out)
        self.progress = bool(args.progress)
        self.summary: dict[str, Any] | None = None

    @classmethod
    def from_yaml(cls, path: str | Path, *, out: str | Path | None = None, **options: Any) -> Pipeline:
        """A pipeline from a camera YAML; ``options`` override it as the command line's flags do."""
        return cls(config=load_config(path), out=out, **options)

    def stream(self) -> Iterator[FrameResult]:
        """Run the cameras, yielding every processed frame; ``self.summary`` is set when the run ends."""
        from detectors import detector_from_config
        from pipeline.embed import build_embedder
        from pipeline.engine import prepare_sources, stream_pipeline
        from pipeline.run import output_dir

        config = self.config
        infos = prepare_sources(config)
        detector = detector_from_config(config.detector)
        embedder = build_embedder(config)
        summary: dict[str, Any] = {}
        frames = stream_pipeline(
            config, output_dir(config, self.out), detector, progress=self.progress, embedder=embedder,
            infos=infos, summary=summary,
        )  # fmt: skip
        try:
            for frame, detections in frames:
                yield FrameResult(frame.camera_id, frame.index, frame.timestamp, frame.image, detections)
        finally:
            frames.close()  # an early exit ends the run like Ctrl-C: flushed outputs, summary written
            self.summary = summary or None

    def run(self) -> dict[str, Any]:
        """The whole run; returns its summary (also in ``out/summary.json``)."""
        for _ in self.stream():
            pass
        assert self.summary is not None
        return self.summary


def _options(options: dict[str, Any]) -> argparse.Namespace:
    """The command line's namespace with ``options`` set, rejecting names ``mcpa run`` has no flag for."""
    from pipeline.run import parse_args

    args = parse_args(["--cameras", "unused.yaml"])
    args.cameras = None
    for key, value in {**_FLAG_DEFAULTS, **options}.items():
        if key == "progress":
            args.no_progress = not value
        elif key in ("sources", "cameras", "out", "log_level") or not hasattr(args, key):
            raise TypeError(f"Pipeline: unknown option {key!r}; expected one of {sorted(_option_names(args))}")
        else:
            setattr(args, key, value)
    args.progress = not args.no_progress
    return args


def _option_names(args: argparse.Namespace) -> set[str]:
    return {k for k in vars(args) if k not in ("sources", "cameras", "out", "log_level", "no_progress")} | {"progress"}
