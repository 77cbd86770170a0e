"""``python -m pipeline.relink RUN_DIR``: offline re-clustering of a finished run's tracklets.

Reads ``RUN_DIR/tracklets.npz`` (written by any run with embedding on), clusters every tracklet globally
with the cannot-link constraints (agglomerative, optional k-reciprocal re-ranking) and rewrites the
global ids in ``tracks.csv``/``tracks.jsonl``, ``mot_global/``, the identities summary and contact sheets.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pipeline.identity_outputs import load_tracklets, write_identity_outputs
from pipeline.linker import offline_relink


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.relink", description=__doc__.splitlines()[0])
    p.add_argument("run_dir", type=Path, help="a run folder (holds tracks.csv and tracklets.npz)")
    p.add_argument("--threshold", type=float, default=0.5, help="merge while linkage similarity >= this")
    p.add_argument("--linkage", choices=["average", "complete", "single"], default="average")
    p.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranked distances")
    p.add_argument(
        "--center-cameras",
        action="store_true",
        help="remove each camera's mean embedding before comparing (helps learned embedders across cameras)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    try:
        if not (args.run_dir / "tracks.csv").is_file():
            raise FileNotFoundError(f"{args.run_dir}: expected a run folder with tracks.csv")
        tracklets, thumbs = load_tracklets(args.run_dir)
        mapping = offline_relink(
            tracklets,
            threshold=args.threshold,
            linkage=args.linkage,
            rerank=args.rerank,
            center_cameras=args.center_cameras,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    counts = write_identity_outputs(args.run_dir, tracklets, mapping, thumbs)
    print(json.dumps({"tracklets": len(tracklets), **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
