"""MSMT17 -> Market-1501 unsupervised domain adaptation: OSNet x0.25, trained on Market without labels.

    python benchmarks/uda_market.py --eval-every 3                       # the headline: camera proxies
    python benchmarks/uda_market.py --variants cluster,hybrid,camera --eval-every 3   # the ablation
    python benchmarks/uda_market.py --smoke          # seconds per iteration / per extraction, no scores
    python benchmarks/uda_market.py --variants ablation --eval-every 3   # issue 15: patch / relation ablation

Starts from ``../shared/weights/osnet_x0_25_msmt17.pth`` (supervised on MSMT17; Market mAP 24.6 / Rank-1
50.0 before adaptation), trains with ``python -m reid.train`` on Market ``bounding_box_train`` without
labels (one subprocess per memory variant: Cluster-Contrast, SpCL hybrid, camera-aware proxies) and
scores the model on query/gallery (every ``--eval-every`` epochs and after the last). Target: mAP >= 60
and Rank-1 >= 80 within 100 minutes on a 2-core CPU, evaluation included. Prints a markdown table; each
run folder keeps its checkpoint, metrics.csv (the per-epoch curve) and metrics.png. ``--baseline`` also
scores the initial weights (one evaluation pass).

Measured (2-core CPU dev machine, 2 torch threads, fp32, 18 epochs x 200 iterations of 64, eps 0.5,
k1 30, lr 3.5e-4 dropped 10x after epoch 12, evaluation every 3 epochs included in the wall time):
per epoch ~45 s feature extraction of the 12,936 crops, ~5 s Jaccard + DBSCAN, ~150 s training
(0.75 s/iteration); one evaluation of 3,368 queries against 15,913 gallery crops ~1.5 min.

| memory | mAP / Rank-1 after epoch 3 | 6 | 9 | 12 | 15 | 18 | min |
| --- | --- | --- | --- | --- | --- | --- | --- |
| cluster | 46.6 / 70.6 | 51.3 / 73.3 | 55.0 / 75.9 | 55.8 / 75.4 | 57.9 / 77.6 | 58.0 / 77.8 | 67.4 |
| camera | 48.9 / 71.8 | 56.1 / 76.8 | 58.3 / 78.0 | 59.8 / 79.5 | 63.1 / 81.4 | 63.3 / 81.7 | 67.2 |
| hybrid (3 epochs) | 37.6 / 62.6 | - | - | - | - | - | 11.7 |

Issue 15 ablation at a reduced budget, run 2026-12-01 on the 2-core CPU (machine otherwise idle): the four
variants at 3 epochs x 100 iterations of 64 each, the same schedule and clustering, evaluation after epoch 3
included in the minutes:

    python benchmarks/uda_market.py --variants camera,camera+relation,camera+patch,camera+patch+relation \
        --epochs 3 --iters 100 --eval-every 3

| variant | minutes | clusters | outliers | mAP % | Rank-1 % |
| --- | --- | --- | --- | --- | --- |
| camera | 14.9 | 686 | 1586 | 44.0 | 67.6 |
| camera + relation head | 14.9 | 722 | 2576 | 45.1 | 72.4 |
| camera + patch branch | 23.2 | 698 | 4471 | 28.3 | 51.6 |
| camera + patch + relation | 22.9 | 710 | 2802 | 37.5 | 65.1 |

At this budget the part/relation head helps (+1.1 mAP, +4.8 Rank-1, no extra minutes), while PAUL's patch
branch hurts (-15.7 mAP) and costs 56 % more time: its PEDAL loss (3.25, larger than the contrastive loss,
2.85, at epoch 3) pulls the shared backbone towards patch neighbourhoods while the pseudo-labels are
still forming. The full-budget ablation (18 x 200, about 7 h for the four) has not been run.

The part / relation head at the full budget (run 2026-12-03 on the same 2-core CPU, machine otherwise idle;
the camera row is the headline run above, from another day):

    python benchmarks/uda_market.py --variants camera+relation --eval-every 6

| variant | minutes | train s / epoch | clusters | outliers | mAP / Rank-1 after epoch 6 | 12 | 18 |
| --- | --- | --- | --- | --- | --- | --- | --- |
| camera | 67.2 | ~150 | - | - | 56.1 / 76.8 | 59.8 / 79.5 | 63.3 / 81.7 |
| camera + relation head | 90.4 | 195-242 (median 210) | 567 | 679 | 58.1 / 80.8 | 63.3 / 83.3 | **65.9 / 85.3** |

The relation head adds 2.6 mAP and 3.6 Rank-1 at the end (2.0 / 4.0 after epoch 6, 3.5 / 3.8 after 12) and
costs about 40 % more training time per epoch (its stripes, one-vs-rest modules and GCP run on every crop of
every batch); the 90.4 minutes (evaluation after epochs 6, 12 and 18 included) are inside issue 15's 120.
The stretch goal (70 mAP, 90 % of the supervised 77.4) is not reached: 65.9 is 85 % of it.

Full-budget plan (``--variants ablation``): camera proxies; + PAUL's patch branch
(``--patch``); + the part / relation head (``--head relation``); both. Every variant has the same budget
(18 epochs x 200 iterations of 64 crops, the same schedule and clustering); the patch branch also forwards
each crop's augmented copy, so it costs more minutes, which the table's minutes column shows.
``--smoke --variants ablation --smoke-images 512 --threads 1`` (shared 2-core CPU, 1 thread) measured
training at 3.9 / 10.6 / 4.7 / 9.5 s per iteration for camera / +patch / +relation / both, and the patch
memory's one-off extraction at ~30 ms per crop; so expect roughly 67 min (camera), ~80 min (+relation)
and ~2.5 h each with the patch branch: about 7 hours for the four.

eps: with the MSMT17 weights, DBSCAN (min_samples 4, k1 30, k2 6) on the 12,936 training crops gives
699 / 805 / 582 / 240 clusters at eps 0.4 / 0.5 / 0.6 / 0.7 with 6255 / 4094 / 2585 / 998 outliers and a
cluster purity (diagnostic against the hidden ids, share of clustered crops in their cluster's majority
id) of 0.89 / 0.81 / 0.57 / 0.19, hence eps 0.5 for the cross-domain start.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MCPA_SHARED", REPO.parent / "shared"))
MARKET = SHARED / "data/market1501/Market-1501-v15.09.15.zip"
INIT = SHARED / "weights/osnet_x0_25_msmt17.pth"

# CPU-first defaults: 256x128, batch 64 = 16 x 4, fp32, all cores; see the module docstring.
VARIANT_FLAGS = {
    "cluster": ["--memory", "cluster"],
    "hard": ["--memory", "cluster", "--hard"],
    "hybrid": ["--memory", "hybrid"],
    "camera": ["--memory", "camera"],
    "camera+patch": ["--memory", "camera", "--patch"],
    "camera+relation": ["--memory", "camera", "--head", "relation"],
    "camera+patch+relation": ["--memory", "camera", "--patch", "--head", "relation"],
    "camera+relation+visibility": ["--memory", "camera", "--head", "relation", "--visibility"],
}
PRESETS = {"ablation": ["camera", "camera+patch", "camera+relation", "camera+patch+relation"]}


def run_variant(name: str, args: argparse.Namespace) -> dict[str, object]:
    """Train one variant in a fresh process; returns its last metrics row plus wall minutes."""
    out = Path(args.out) / name
    cmd = [sys.executable, "-m", "reid.train", "--dataset", "market1501", "--root", str(args.root),
           "--init", str(args.init), "--arch", "osnet_x0_25", "--out", str(out), "--epochs", str(args.epochs),
           "--iters", str(args.iters), "--eps", str(args.eps), "--k1", str(args.k1), "--lr", str(args.lr),
           "--step-size", str(args.step_size), "--eval-every", str(args.eval_every), "--workers", str(args.workers),
           "--threads", str(args.threads), *VARIANT_FLAGS[name]]  # fmt: skip
    if args.smoke:
        cmd += ["--max-images", str(args.smoke_images), "--min-samples", "2", "--no-evaluate"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    minutes = (time.perf_counter() - start) / 60
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    return {"variant": name, "minutes": minutes, **rows[-1], "rows": rows}


def baseline(args: argparse.Namespace) -> dict[str, float]:
    """mAP / Rank-1 of the initial weights on Market query/gallery."""
    import torch

    from reid.train import build_model_from_init, evaluate, load_market
    from reid.trainer.config import make_config

    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    cfg = make_config({"dataset": "market1501", "root": str(args.root), "workers": args.workers})
    model, _, _ = build_model_from_init("osnet_x0_25", str(args.init))
    return evaluate(model, load_market(cfg).evaluation, cfg, torch.device("cpu"))


def _fmt(value: object, pct: bool = False) -> str:
    if value in (None, ""):
        return "-"
    return f"{100 * float(value):.1f}" if pct else f"{float(value):.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=MARKET)
    parser.add_argument("--init", type=Path, default=INIT)
    parser.add_argument("--variants", default="camera",
                        help=f"comma list of {sorted(VARIANT_FLAGS)}, or a preset: {PRESETS}")  # fmt: skip
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--eps", type=float, default=0.5)
    parser.add_argument("--k1", type=int, default=30)
    parser.add_argument("--lr", type=float, default=3.5e-4)
    parser.add_argument("--step-size", type=int, default=12)
    parser.add_argument("--eval-every", type=int, default=0, help="0: evaluate only after the last epoch")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--out", default=str(REPO / "benchmarks/results/uda_market"))
    parser.add_argument("--baseline", action="store_true", help="also score the initial weights")
    parser.add_argument("--smoke", action="store_true", help="1 epoch x 3 iterations on a subset, no scores")
    parser.add_argument("--smoke-images", type=int, default=1024)
    args = parser.parse_args()
    for path in (args.root, args.init):
        if not path.exists():
            raise SystemExit(f"not found: {path} (set MCPA_SHARED to the folder holding data/ and weights/)")
    if args.smoke:
        args.epochs, args.iters, args.eval_every = 1, 3, 0
    names = [n for v in args.variants.split(",") for n in PRESETS.get(v, [v])]
    unknown = [n for n in names if n not in VARIANT_FLAGS]
    if unknown:
        raise SystemExit(f"--variants: expected names from {sorted(VARIANT_FLAGS)} or {sorted(PRESETS)}, got {unknown}")
    results = [run_variant(v, args) for v in names]
    print("\n| variant | epochs x iters | minutes | clusters | outliers | mAP % | Rank-1 % |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    if args.baseline:
        before = baseline(args)
        print(f"| init (MSMT17) | - | - | - | - | {_fmt(before['mAP'], True)} | {_fmt(before['rank1'], True)} |")
    for r in results:
        print(f"| {r['variant']} | {r['epoch']} x {args.iters} | {r['minutes']:.1f} | {r['clusters']} | "
              f"{r['outliers']} | {_fmt(r.get('mAP'), True)} | {_fmt(r.get('rank1'), True)} |")  # fmt: skip
    if args.smoke:
        for r in results:
            images = min(args.smoke_images, 12936)
            print(f"{r['variant']}: extraction {float(r['extract_s']) / images * 1000:.1f} ms/image "
                  f"({float(r['extract_s']):.1f} s for {images}), clustering {float(r['cluster_s']):.1f} s, "
                  f"training {float(r['train_s']) / args.iters:.2f} s/iteration (batch 64)")  # fmt: skip


if __name__ == "__main__":
    main()
