"""``python -m pipeline.adapt RUN_DIR``: adapt the ReID model to a deployment on its own harvested crops.

The closed loop in one command, label-free and safe by default:

1. **train** (``reid.train``) from the run's own ReID checkpoint on ``RUN_DIR/crops/manifest.csv``: tracklet
   pseudo-labels joined across cameras by the calibrated linker rule (``reid.trainer.tracklet_labels``), same-camera
   overlapping tracklets as cannot-links, camera-aware proxies; tracklets of overlapping views that the run saw
   standing on one spot at once (:func:`pipeline.identity.outputs.ground_links`), and people crossing the seam
   of two adjacent views (:func:`pipeline.identity.outputs.handoff_links`), written to ``OUT/links.csv``,
   share a pseudo-label whatever their appearance (``--no-links``: not); every epoch is scored by the label-free
   check on the run's own constraints (``reid.trainer.model_check``), the best epoch is kept, training stops early
   when the check stops improving; the training run lives in ``OUT/model/``;
2. **decide**: the kept model is promoted only when its check beats the starting model's by more than
   ``--min-gain`` and none of the check's three parts is below the start's (:func:`refusal`). Otherwise
   nothing is promoted, the reason is printed and the exit code is 3
   (``--promote-anyway`` overrides the rule; ``adapt.json`` then records that the check did not agree);
3. **re-embed and re-link**: every harvested crop is embedded with the promoted model (the pipeline's own
   embedder), each tracklet's mean and halves are rebuilt from its crops, and the tracklets are re-clustered
   offline at the run's linking settings (threshold ``auto``: recalibrated for the new model);
4. **write** a new run folder ``OUT`` (default ``RUN_DIR/adapted``): ``checkpoint.pth`` (the promoted
   model; use it with ``pipeline.run --reid``), the run's track files with the new global ids,
   ``tracklets.npz``, ``mot_global/``, identities and contact sheets, ``before/`` (the same re-embedding and
   re-linking with the starting model: the like-for-like comparison) and ``adapt.json`` (the checks, the
   decision, identity counts of the run, before and after). The run itself is never modified.

Tracklets without harvested crops (shorter than ``outputs.crop_every`` frames or smaller than
``outputs.crop_min_height``) get no embedding and no global id in ``OUT``. Exit codes: 0 promoted, 3 not
promoted, 2 bad input, 130 interrupted.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import shutil
import sys
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.durable import atomic_open
from pipeline.embed import coverage, quality
from pipeline.identity.linker import offline_relink
from pipeline.identity.outputs import (
    TRACKLETS_FILE,
    ground_links,
    handoff_links,
    load_split_parent,
    load_tracklets,
    read_tracks,
    save_tracklets,
    settle_identities,
    write_identity_outputs,
)
from pipeline.identity.relink import check_out_folder, run_linking
from pipeline.identity.tracklets import Tracklet, rejoin_lonely_cuts
from reid.console import end_summary, progress, setup_logging
from reid.trainer.model_check import DIGITS

log = logging.getLogger(__name__)

NOT_PROMOTED = 3
CHECK_PARTS = ("separation", "cross_camera", "consistency", "continuity")
COPIED = ("tracks.csv", "tracks.jsonl")


def run_model(run_dir: Path) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """(weights, arch, camera config path, embed settings) the run embedded with, from its ``summary.json``.

    Raises:
        FileNotFoundError: no run folder with crops and tracklets. ValueError: the run's model cannot be trained.
    """
    needed = ("summary.json", TRACKLETS_FILE, "crops/manifest.csv")
    missing = [n for n in needed if not (run_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{run_dir}: expected a finished run made with ReID and --crops (missing {', '.join(missing)}); "
            "run python -m pipeline.run --cameras CAMS.yaml --reid WEIGHTS --crops first"
        )
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        embed = summary["config"]["embed"] or {}
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{run_dir / 'summary.json'}: expected the JSON summary of a run ({exc!r})") from exc
    weights = str(embed.get("weights", "classical"))
    if weights == "classical" or weights.lower().endswith(".onnx"):
        raise ValueError(
            f"{run_dir}: the run embedded with {weights!r}, which cannot be trained; adapt a run made with a "
            "checkpoint (pipeline.run --reid osnet_x0_25_msmt17.pth --reid-arch osnet_x0_25)"
        )
    return weights, embed.get("arch"), summary["config"].get("path"), embed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.adapt", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a finished run made with ReID and --crops")
    p.add_argument("--out", type=Path, default=None, help="new run folder (default: RUN_DIR/adapted)")
    p.add_argument("--epochs", type=int, default=6, help="most training epochs (default: 6)")
    p.add_argument("--iters", type=int, default=50, help="iterations per epoch (default: 50)")
    p.add_argument("--patience", type=int, default=2, help="stop after this many epochs without a better check")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    p.add_argument("--lr", type=float, default=3.5e-4, help="Adam learning rate (default: 3.5e-4)")
    p.add_argument("--label-fraction", type=float, default=None,
                   help="pseudo-labels: threshold position, strangers to halves (default: the trainer's)")  # fmt: skip
    p.add_argument("--links", action=argparse.BooleanOptionalAction, default=True,
                   help="tracklets on one spot, or handed over, share a pseudo-label (default: on)")  # fmt: skip
    p.add_argument("--min-gain", type=float, default=0.0,
                   help="promote only when the check beats the start by more than this (default: 0)")  # fmt: skip
    p.add_argument("--promote-anyway", action="store_true",
                   help="promote the kept model even when its check does not beat the start")  # fmt: skip
    p.add_argument("--device", default="auto", help="training and embedding device: auto, cpu, cuda[:N]")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = all cores)")
    p.add_argument("--seed", type=int, default=1, help="seed of every random choice")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder (default: refuse)")
    return p.parse_args(argv)


def refusal(start: dict[str, float], kept: dict[str, float] | None, min_gain: float) -> str | None:
    """Why the kept model must not be promoted, or None: its check must beat the start's by more than
    ``min_gain`` and none of the check's parts may fall below the start's (a gain in one part must not pay
    for a loss in another: e.g. more consistent clusters bought by losing cross-camera links).

    Args:
        start: the starting model's check (``score`` and the parts). kept: the kept epoch's metrics row
            (``check`` and the parts), None when no epoch was kept.
    """
    if kept is None or kept.get("check") is None:
        return "no trained epoch could be checked"
    # The start's check arrives rounded to DIGITS (ModelCheck.as_dict), the kept epoch's at metrics.csv's
    # precision: compare both at DIGITS, or an equal count (8/19 = 0.421053 against 0.4211) reads as a loss.
    if not round(kept["check"], DIGITS) > round(start["score"], DIGITS) + min_gain:
        return (f"its label-free check {kept['check']:.4f} does not beat the starting model's "
                f"{start['score']:.4f} by more than {min_gain:g}")  # fmt: skip
    worse = [f"{part} {kept[part]:.4f} < {start[part]:.4f}" for part in CHECK_PARTS
             if np.isfinite(start.get(part, np.nan))
             and round(kept.get(part, np.inf), DIGITS) < round(start[part], DIGITS)]  # fmt: skip
    return f"part of its check got worse than the starting model's ({', '.join(worse)})" if worse else None


def write_links(run_dir: Path, path: Path) -> int:
    """Write the run's overlapping-view pairs (:func:`~pipeline.identity.outputs.ground_links`) and hand-overs
    between adjacent views (:func:`~pipeline.identity.outputs.handoff_links`) as the trainer's ``--links``
    CSV; returns how many."""
    ground, handoffs = ground_links(run_dir), handoff_links(run_dir)
    with atomic_open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("tracklet_a", "tracklet_b", "evidence", "common_frames"))
        writer.writerows((a, b, "one spot", n) for n, a, b in ground)
        writer.writerows((a, b, "hand-over", 0) for a, b in handoffs)
    return len(ground) + len(handoffs)


def train_candidate(
    args: argparse.Namespace, manifest: Path, weights: str, arch: str | None, out: Path, links: Path | None = None
) -> tuple[dict, dict | None]:
    """Train from the run's model (``links``: the trainer's must-link CSV); returns the trainer's checks and the
    kept epoch's metrics row."""
    from reid.train import train
    from reid.trainer.config import make_config
    from reid.trainer.run import load_train_state

    cfg = make_config({"manifest": str(manifest), "init": weights, "arch": arch, "out": str(out),
                       "epochs": args.epochs, "iters": args.iters, "patience": args.patience,
                       "batch_size": args.batch_size, "lr": args.lr, "device": args.device,
                       "threads": args.threads, "seed": args.seed, "evaluate": False,
                       "links": None if links is None else str(links),
                       **({} if args.label_fraction is None else {"label_fraction": args.label_fraction})})  # fmt: skip
    train(cfg, created_by="python -m pipeline.adapt " + " ".join(sys.argv[1:]))
    state = load_train_state(out)
    checks = state.get("checks") or {}
    if not checks.get("enabled"):
        raise ValueError(f"{manifest}: too few tracklets with 2+ crops to check a model without labels")
    kept = next((r for r in state["history"] if r["epoch"] == checks["best_epoch"]), None)
    return checks, kept


def embed_crops(crops: Any, weights: str | Path, arch: str | None, device: str) -> np.ndarray:
    """(N, D) float32 unit features of every harvested crop, by the pipeline's embedder."""
    from reid import load_embedder

    embedder = load_embedder(weights, device=device, arch=arch)
    chunks = []
    for start in progress(range(0, len(crops), 256), desc="re-embedding crops", leave=False):
        chunks.append(embedder([crops.read(i) for i in range(start, min(start + 256, len(crops)))]))
    return np.concatenate(chunks).astype(np.float32)


def crop_weights(crops: Any, tracks: Path, embed: dict[str, Any]) -> np.ndarray:
    """(N,) float32 weight of each harvested crop as the run's embed stage weighs its box (``pipeline.embed``):
    0 for a box it skips (smaller than ``min_height`` / ``min_width``, or covered by another box of its frame
    beyond ``max_overlap``), else its quality (confidence x uncovered share x size). A frame's boxes are
    its rows of ``tracks.csv``; each crop takes the coverage of its own track's box there."""
    cams, values = read_tracks(tracks)
    crop_keys = list(zip(np.asarray(crops.camera_names)[crops.camids].tolist(), crops.frame_index.tolist()))
    wanted = set(crop_keys)
    rows_of: dict[tuple[str, int], list[int]] = defaultdict(list)
    for row, key in enumerate(zip(cams.tolist(), values[:, 0].astype(np.int64).tolist())):
        if key in wanted:
            rows_of[key].append(row)
    covered = {key: dict(zip(values[rows, 2].astype(np.int64).tolist(), coverage(values[rows, 4:8]).tolist()))
               for key, rows in rows_of.items()}  # fmt: skip
    cover = np.array([covered.get(key, {}).get(int(track), 0.0) for key, track in zip(crop_keys, crops.track_ids)],
                     np.float32)  # fmt: skip
    wh = np.clip(crops.boxes[:, 2:] - crops.boxes[:, :2], 0, None)
    usable = (wh[:, 1] >= embed.get("min_height", 48)) & (wh[:, 0] >= embed.get("min_width", 16))
    usable &= cover <= embed.get("max_overlap", 0.4)
    return np.where(usable, quality(crops.boxes, cover, crops.confidence), 0.0).astype(np.float32)


def reembed_tracklets(
    tracklets: list[Tracklet], crops: Any, features: np.ndarray, weights: np.ndarray | None = None
) -> list[Tracklet]:
    """Tracklets whose embedding sums (all crops, odd crops in frame order) come from ``features``.

    A crop belongs to the tracklet its manifest row names (the run's one tracklet id); for runs made before
    the manifest and ``tracklets.npz`` shared that id, to the tracklet of its (camera, track id).
    ``weights`` (N,) weigh the crops as the pipeline weighs boxes (:func:`crop_weights`; 0 = not used). A
    tracklet without usable crops loses its embedding.
    """
    weights = np.ones(len(features), np.float32) if weights is None else weights
    cams = np.asarray(crops.camera_names)[crops.camids]
    rows = _crop_rows(tracklets, cams, crops.track_ids, getattr(crops, "tracklet_ids", None))
    keep = np.flatnonzero((rows >= 0) & (weights > 0))
    order = keep[np.lexsort((crops.frame_index[keep], rows[keep]))]
    sizes = np.bincount(rows[order], minlength=len(tracklets))
    rank = np.arange(len(order)) - (np.cumsum(sizes) - sizes)[rows[order]]
    dim = features.shape[1]
    sums, odd = np.zeros((len(tracklets), dim)), np.zeros((len(tracklets), dim))
    weighted = features * weights[:, None]
    np.add.at(sums, rows[order], weighted[order])
    np.add.at(odd, rows[order[rank % 2 == 1]], weighted[order[rank % 2 == 1]])
    out = []
    for i, t in enumerate(tracklets):
        has = sizes[i] > 0
        out.append(replace(t, n_embedded=int(sizes[i]), global_id=-1,
                           embedding_sum=sums[i].astype(np.float32) if has else None,
                           odd_sum=odd[i].astype(np.float32) if sizes[i] > 1 else None))  # fmt: skip
    return out


def _crop_rows(
    tracklets: list[Tracklet], cams: np.ndarray, track_ids: np.ndarray, tracklet_ids: np.ndarray | None
) -> np.ndarray:
    """(N,) index into ``tracklets`` of each crop (-1: none): by tracklet id when every id names a tracklet of
    the crop's own camera and track, else by (camera, track id)."""
    by_id = {t.tracklet_id: i for i, t in enumerate(tracklets)}
    if tracklet_ids is not None:
        rows = np.array([by_id.get(int(k), -1) for k in tracklet_ids], np.int64)
        same = [r >= 0 and tracklets[r].camera_id == c and tracklets[r].track_id == int(t)
                for r, c, t in zip(rows.tolist(), cams, track_ids)]  # fmt: skip
        if all(same):
            return rows
    index = {(t.camera_id, t.track_id): i for i, t in enumerate(tracklets)}
    return np.array([index.get((c, int(k)), -1) for c, k in zip(cams, track_ids)], np.int64)


def relink(run_dir: Path, out: Path, tracklets: list[Tracklet], thumbs: dict) -> dict[str, Any]:
    """Offline re-clustering at the run's linking settings; writes the identity outputs into ``out``."""
    settings = run_linking(run_dir)
    report: dict[str, Any] = {}
    mapping = offline_relink(
        tracklets, threshold=settings["offline_threshold"], center_cameras=bool(settings["center_cameras"]),
        calibration_fraction=float(settings["calibration_fraction"]),
        restitch_window_s=float(settings["restitch_window_s"]), handover=bool(settings["handover"]),
        handoffs=bool(settings.get("handoffs", True)),
        report=report,
    )  # fmt: skip
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, out / name)
    split_parent = load_split_parent(run_dir)
    mapping = rejoin_lonely_cuts(mapping, split_parent, tracklets)  # as the run and pipeline.relink do
    mapping = settle_identities(out, tracklets, mapping, split_parent)
    save_tracklets(out, [replace(t, global_id=mapping[t.tracklet_id]) for t in tracklets], thumbs, split_parent)
    run_info = {"run folder": str(out), "adapted from": str(run_dir),
                "linking": f"offline re-clustering, threshold {round(report['threshold'], 4)}"}  # fmt: skip
    counts = write_identity_outputs(out, tracklets, mapping, thumbs, run_info, split_parent)
    return {**counts, "threshold": round(report["threshold"], 4)}


def _prepare(run_dir: Path, out: Path, force: bool) -> None:
    check_out_folder(run_dir, out, force)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def adapt(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """The whole command (module docstring); returns (exit code, the ``adapt.json`` record)."""
    run_dir = args.run_dir
    out = args.out if args.out is not None else run_dir / "adapted"
    weights, arch, config, embed = run_model(run_dir)
    _prepare(run_dir, out, args.force)
    t0 = time.perf_counter()
    links = out / "links.csv" if args.links else None
    n_links = write_links(run_dir, links) if links is not None else 0
    if links is not None:
        log.info("%d tracklet pairs on one spot or handed over: one pseudo-label each (%s)", n_links, links)
    checks, kept = train_candidate(args, run_dir / "crops/manifest.csv", weights, arch, out / "model", links)
    best = checks["best"]
    record: dict[str, Any] = {"run": str(run_dir), "out": str(out), "start_model": weights, "must_links": n_links,
                              "start_check": checks["start"], "best_check": best,
                              "best_epoch": checks["best_epoch"],
                              "train_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
    why = refusal(checks["start"], kept, args.min_gain)
    record["check_beats_start"] = why is None
    if kept is not None:
        record["kept_check"] = {k: round(float(kept[k]), 4) for k in ("check", *CHECK_PARTS) if k in kept}
    if why is not None and not args.promote_anyway:
        record.update(promoted=False, reason=(
            f"the adapted model (epoch {checks['best_epoch']}) is not promoted: {why}; keep using {weights} "
            f"(the candidate is in {out / 'model'})"))  # fmt: skip
        _write_json(out / "adapt.json", record)
        return NOT_PROMOTED, record
    from reid.data.manifest import HarvestedCrops

    shutil.copy2(out / "model/checkpoint.pth", out / "checkpoint.pth")
    crops, (tracklets, thumbs) = HarvestedCrops(run_dir / "crops/manifest.csv"), load_tracklets(run_dir)
    weighing = crop_weights(crops, run_dir / "tracks.csv", embed)
    (out / "before").mkdir()  # like for like: the starting model through the same re-embedding and re-linking
    start_features = embed_crops(crops, weights, arch, args.device)
    before = relink(run_dir, out / "before", reembed_tracklets(tracklets, crops, start_features, weighing), thumbs)
    fresh = reembed_tracklets(tracklets, crops, embed_crops(crops, out / "checkpoint.pth", None, args.device), weighing)
    after = relink(run_dir, out, fresh, thumbs)
    run_ids = json.loads((run_dir / "summary.json").read_text()).get("identities", {})
    next_run = f"python -m pipeline.run --cameras {config or 'CAMS.yaml'} --reid {out / 'checkpoint.pth'}"
    record.update(promoted=True, checkpoint=str(out / "checkpoint.pth"), tracklets=len(fresh),
                  tracklets_without_crops=sum(t.n_embedded == 0 for t in fresh),
                  run={k: run_ids.get(k) for k in ("global_ids", "multi_camera_ids")}, before=before, after=after,
                  next_run=next_run, total_s=round(time.perf_counter() - t0, 1))  # fmt: skip
    _write_json(out / "adapt.json", record)
    return 0, record


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("INFO")
    try:
        code, record = adapt(args)
    except KeyboardInterrupt:
        print("interrupted: the run is untouched; the training run in OUT/model keeps its last epoch", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write the adapted run: {exc}", file=sys.stderr)
        return 2
    if code == NOT_PROMOTED:
        print(end_summary("adapt: not promoted", [record["reason"]], record.get("out"),
                          ["rerun with --promote-anyway to write the adapted run regardless"]))  # fmt: skip
        return code
    facts = [f"promoted {record['checkpoint']}",
             f"check {record['start_check']['score']:.4f} -> {record['best_check']:.4f}",
             f"global ids {record['before']['global_ids']} -> {record['after']['global_ids']}"]  # fmt: skip
    print(end_summary("adapt done", facts, record["out"], [record["next_run"]]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
