"""When does k-reciprocal re-ranking help offline linking? IDF1 with and without it against the run's size.

    python benchmarks/rerank_size.py [--models osnet_x0_25_msmt17 osnet_x0_25_market1501 classical]
                                     [--people 10 25 50 100 200 400 750] [--seeds 3] [--runs RUN ...]

Market-1501 tracklets (the construction of ``benchmarks/market_tracklets.py``: real crops of 750 people in
6 cameras, one tracklet per person, camera and sequence) are subsampled to ``--people`` random people
(``--seeds`` draws each; all 750 once). Each subset is linked offline at threshold "auto", plain and with
re-ranking (``k1=6, k2=3`` tracklets, the library defaults), and scored by image IDF1. ``--runs RUN=GT`` adds
finished run folders with ground truth (the rendered samples, ``sample_videos/gt``; PETS09, its
``mot15/gt.txt``), relinked both ways from their ``tracklets.npz`` and scored with ``pipeline.evaluate``
(multi-camera IDF1 of the relinked ``mot_global``; IDF1 for one camera).

The question: re-ranking lifts Market-1501 offline IDF1 from 0.60 to 0.69 but lowers the rendered samples
from 0.95 to 0.78, so it is off by default. Is run size what separates them (neighbourhoods of ``k1``
tracklets cover a large share of a small run)?

Results (2026-12-01, 2-core CPU, OSNet x0.25 MSMT17 unless named; ``python benchmarks/rerank_size.py
--models osnet_x0_25_msmt17 --runs benchmarks/results/identity_defaults/samples_osnet=sample_videos/gt
benchmarks/results/identity_defaults/samples_classical=sample_videos/gt
benchmarks/results/identity_defaults/pets=../shared/data/pets09_s2l1/mot15/gt.txt``; median of 3 draws):

| data | people | tracklets (median) | IDF1 plain | IDF1 rerank | rerank - plain |
|---|---|---|---|---|---|
| samples, OSNet | 8 | 21 | 0.948 | 0.781 | -0.167 |
| samples, classical | 8 | 21 | 0.948 | 0.768 | -0.181 |
| PETS09 (one camera) | 19 | 27 | 0.810 | 0.810 | +0.000 |
| Market | 10 | 50 | 0.843 | 0.953 | +0.110 |
| Market | 25 | 116 | 0.857 | 0.925 | +0.068 |
| Market | 50 | 232 | 0.770 | 0.855 | +0.085 |
| Market | 100 | 479 | 0.746 | 0.851 | +0.105 |
| Market | 200 | 954 | 0.714 | 0.781 | +0.067 |
| Market | 400 | 1912 | 0.642 | 0.734 | +0.091 |
| Market | 750 | 3632 | 0.602 | 0.686 | +0.084 |

Smaller Market draws (5 seeds each, one-off run): 4 people (17-26 tracklets) plain 0.65-0.97, rerank
0.98-1.00 in all five; 5 people (23-33 tracklets) rerank better in four of five (one 0.885 -> 0.839).
So size is not it: a 20-tracklet Market draw gains as much as all 750 people, while the 21-tracklet
samples lose. Smaller ``k1`` (2-4) only trades one loss for another (samples 0.948/0.905/0.905 at
k1 = 2/3/4; Market-all 0.561/0.671/0.683). Re-ranking stays an explicit choice (``linking.rerank``,
``relink --rerank``).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from market_tracklets import (  # noqa: E402
    MODELS,
    SHARED,
    by_track,
    group_tracklets,
    image_idf1,
    load_features,
    market_records,
    per_image,
    run_online,
    sequence_offsets,
)

from pipeline.identity.linker import offline_relink  # noqa: E402

logger = logging.getLogger("rerank_size")


def market_rows(model: str, people: list[int], seeds: int, threads: int) -> list[dict]:
    from reid.data import Market1501

    market = Market1501(SHARED / "data/market1501/Market-1501-v15.09.15.zip")
    records = market_records(market)
    offsets = sequence_offsets(list(market.query) + list(market.gallery) + list(market.train))
    weights, arch = MODELS[model]
    feats = load_features(model, weights, arch, market, records, threads)
    everyone = group_tracklets(records, offsets)
    tracklets = run_online(everyone, feats[everyone.source], None, "frames")[1]
    pids = np.unique(everyone.t_pid)
    rows = []
    for n in people:
        draws = 1 if n >= len(pids) else seeds
        for seed in range(draws):
            chosen = pids if n >= len(pids) else np.random.default_rng(seed).choice(pids, n, replace=False)
            keep_t = np.isin(everyone.t_pid, chosen)
            subset = [t for t, k in zip(tracklets, keep_t) if k]
            images = np.isin(everyone.pid, chosen)
            row = {"data": f"market {model}", "people": len(chosen), "tracklets": len(subset), "seed": seed}
            for rerank in (False, True):
                mapping = offline_relink(subset, threshold="auto", rerank=rerank, center_cameras=True)
                full = {t.tracklet_id: mapping.get(t.tracklet_id, -1) for t in tracklets}
                pred = per_image(everyone, by_track(tracklets, full, len(everyone)))
                row["rerank" if rerank else "plain"] = image_idf1(everyone.pid[images], pred[images])["idf1"]
            rows.append(row)
            logger.info("%s", row)
    return rows


def run_rows(spec: str) -> dict:
    """``RUN_DIR=GT``: relink a finished run both ways and score its mot_global against GT (file or folder)."""
    import shutil

    from pipeline.evaluation.evaluate import evaluate_paths
    from pipeline.identity.outputs import load_tracklets, write_identity_outputs
    from pipeline.identity.relink import COPIED

    run, gt = (Path(x) for x in spec.split("=", 1))
    tracklets, thumbs = load_tracklets(run)
    row = {"data": run.name, "people": "-", "tracklets": len(tracklets), "seed": 0}
    for rerank in (False, True):
        mapping = offline_relink(tracklets, threshold="auto", rerank=rerank, center_cameras=True)
        with tempfile.TemporaryDirectory() as tmp:
            for name in COPIED:
                if (run / name).is_file():
                    shutil.copy2(run / name, Path(tmp) / name)
            write_identity_outputs(Path(tmp), tracklets, mapping, thumbs)
            pred = Path(tmp) / "mot_global"
            if gt.is_file():
                pred = next(pred.glob("*.txt"))
            result = evaluate_paths(gt, pred)
        score = result.get("multicamera") or result["combined"]
        row["rerank" if rerank else "plain"] = score["idf1"] if "idf1" in score else score["IDF1"]
    logger.info("%s", row)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--people", nargs="+", type=int, default=[10, 25, 50, 100, 200, 400, 750])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", nargs="*", default=[], metavar="RUN=GT", help="run folders and their ground truth")
    args = p.parse_args()
    from reid.console import setup_logging

    setup_logging("INFO")
    logging.getLogger("pipeline").setLevel(logging.WARNING)
    rows = [run_rows(r) for r in args.runs]
    for model in args.models:
        rows += market_rows(model, args.people, args.seeds, args.threads)
    print("| data | people | tracklets (median) | IDF1 plain | IDF1 rerank | rerank - plain |")
    print("|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["people"]), []).append(r)
    for (data, people), rs in groups.items():
        plain = statistics.median(r["plain"] for r in rs)
        rerank = statistics.median(r["rerank"] for r in rs)
        tracklets = statistics.median(r["tracklets"] for r in rs)
        print(f"| {data} | {people} | {tracklets:.0f} | {plain:.3f} | {rerank:.3f} | {rerank - plain:+.3f} |")


if __name__ == "__main__":
    main()
