"""``python -m pipeline.relink RUN_DIR``: offline re-clustering of a finished run's tracklets, into a new folder.

Reads ``RUN_DIR/tracklets.npz`` (written by any run with embedding on), clusters every tracklet globally
with the cannot-link constraints (agglomerative, optional k-reciprocal re-ranking) and writes a copy of the
run's track files with the new global ids, ``mot_global/``, the identities summary and contact sheets to
``--out`` (default ``RUN_DIR/relinked/``). The run itself is never modified. A tracklet the run cut off its
track at a suspected identity switch and that ends up an identity of its own is given back to the piece it
was cut from, as the run itself does (``split_parent`` in ``tracklets.npz``, :func:`rejoin_lonely_cuts`).

Defaults come from the run's own config (``summary.json``): its ``offline_threshold`` (``auto``: fitted on
the run's evidence, see :mod:`reid.calibration`), camera centring and calibration fraction.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

from pipeline.identity.linker import check_threshold, offline_relink
from pipeline.identity.outputs import (
    TRACKLETS_FILE,
    load_split_parent,
    load_tracklets,
    settle_identities,
    write_identity_outputs,
)
from pipeline.identity.tracklets import rejoin_lonely_cuts
from reid.console import end_summary, setup_logging

COPIED = ("tracks.csv", "tracks.jsonl", TRACKLETS_FILE)
DEFAULT_LINKING = {"offline_threshold": "auto", "center_cameras": True, "calibration_fraction": 0.6,
                   "restitch_window_s": 5.0, "handover": True, "handoffs": True,
                   "consistent_threshold": True}  # fmt: skip


def _threshold(text: str) -> float | str:
    try:
        return check_threshold(text if text == "auto" else float(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).replace("threshold: ", "")) from None


def run_linking(run_dir: Path) -> dict[str, Any]:
    """The linking settings the run was made with (``summary.json``), else the defaults."""
    path = run_dir / "summary.json"
    linking: dict[str, Any] = {}
    if path.is_file():
        try:
            linking = json.loads(path.read_text()).get("config", {}).get("linking", {}) or {}
        except (json.JSONDecodeError, AttributeError) as exc:
            raise ValueError(f"{path}: expected the JSON summary of a run ({exc})") from exc
    return {k: linking.get(k, v) for k, v in DEFAULT_LINKING.items()}


def check_out_folder(run_dir: Path, out: Path, force: bool) -> None:
    """Raise ValueError when ``out`` is the run itself, or holds files and ``force`` is off."""
    if out.resolve() == run_dir.resolve():
        raise ValueError(f"--out {out}: expected a folder other than the run itself (the run is never rewritten)")
    if out.exists() and any(out.iterdir()) and not force:
        raise ValueError(f"--out {out}: already exists and is not empty; pass --force to replace it")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pipeline.relink",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("run_dir", type=Path, help="a run folder (holds tracks.csv and tracklets.npz)")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: RUN_DIR/relinked)")
    p.add_argument(
        "--threshold",
        type=_threshold,
        default=None,
        help="merge while linkage similarity >= this, or 'auto' (default: the run's offline_threshold, else auto)",
    )
    p.add_argument("--linkage", choices=["average", "complete", "single"], default="average",
                   help="cluster linkage (default: average)")  # fmt: skip
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranked distances")
    centre = p.add_mutually_exclusive_group()
    centre.add_argument("--center-cameras", dest="center", action="store_const", const=True, default=None,
                        help="remove each camera's mean embedding before comparing (default: as the run)")  # fmt: skip
    centre.add_argument("--no-center-cameras", dest="center", action="store_const", const=False,
                        help="compare raw embeddings")  # fmt: skip
    p.add_argument("--consistent", action=argparse.BooleanOptionalAction, default=None,
                   help="with auto, raise the threshold to where the nearest outsiders of other cameras sit "
                        "(default: as the run, else on)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing --out folder (default: refuse)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging("INFO")
    run_dir: Path = args.run_dir
    out: Path = args.out if args.out is not None else run_dir / "relinked"
    try:
        if not (run_dir / "tracks.csv").is_file():
            raise FileNotFoundError(f"{run_dir}: expected a run folder with tracks.csv")
        check_out_folder(run_dir, out, args.force)
        settings = run_linking(run_dir)
        threshold = settings["offline_threshold"] if args.threshold is None else args.threshold
        center = settings["center_cameras"] if args.center is None else args.center
        tracklets, thumbs = load_tracklets(run_dir)
        split_parent = load_split_parent(run_dir)
        report: dict[str, Any] = {}
        mapping = offline_relink(
            tracklets, threshold=check_threshold(threshold), linkage=args.linkage, rerank=args.rerank,
            center_cameras=bool(center), calibration_fraction=float(settings["calibration_fraction"]),
            restitch_window_s=float(settings["restitch_window_s"]), handover=bool(settings["handover"]),
            handoffs=bool(settings["handoffs"]),
            consistent=bool(settings["consistent_threshold"] if args.consistent is None else args.consistent),
            report=report,
        )  # fmt: skip
        # the run's cuts: a piece left as an identity of its own goes back to its track, as in the run
        mapping = rejoin_lonely_cuts(mapping, split_parent, tracklets)
        _prepare(run_dir, out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    run_info = {"run folder": str(out), "relinked from": str(run_dir),
                "linking": f"offline re-clustering, threshold {round(report['threshold'], 4)}"}  # fmt: skip
    mapping = settle_identities(out, tracklets, mapping, split_parent)
    counts = write_identity_outputs(out, tracklets, mapping, thumbs, run_info, split_parent)
    result = {"run": str(run_dir), "out": str(out), "tracklets": len(tracklets), **counts,
              "threshold": round(report["threshold"], 4), "center_cameras": bool(center), "linkage": args.linkage,
              "rerank": args.rerank}  # fmt: skip
    if "calibration" in report:
        result["calibration"] = report["calibration"].describe()
    if "consistency" in report:
        result["consistency"] = report["consistency"]
    if "handover" in report:
        result["handover"] = report["handover"].describe()
    tmp = out / "relink.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(out / "relink.json")
    facts = [f"{len(tracklets)} tracklets", f"{counts['global_ids']} global ids "
             f"({counts['multi_camera_ids']} in >1 camera)", f"threshold {result['threshold']}"]
    print(end_summary("relink done", facts, out, [f"open {out / 'identities' / 'index.html'}"]))
    return 0


def _prepare(run_dir: Path, out: Path) -> None:
    """A fresh ``out`` holding copies of the run's files that the rewrite starts from."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in COPIED:
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, out / name)


if __name__ == "__main__":
    sys.exit(main())
