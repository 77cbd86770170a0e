"""Adaptation without training: BatchNorm statistics re-estimated on a run's harvested crops (AdaBN).

    python benchmarks/adapt_scenes.py --scenes pets_split,...   # the harvesting runs and ground truth
    python benchmarks/adabn_probe.py [--scenes pets_split,pets_split_x0.75,...]

For each scene of ``benchmarks/adapt_scenes.py`` with ground truth: OSNet x0.25 MSMT17 with every BatchNorm's
running mean and variance reset and re-estimated over the run's crops (``RUN/crops``, one pass in batches of 64,
cumulative average), written as a checkpoint; then ``pipeline.run`` with it (the next run) and multi-camera
IDF1 beside the harvesting run's. No labels and no gradient: the cheapest label-free adaptation, and a probe of
whether the small scenes' losses come from the trainer or from the crops.

Results (2026-12-03, session 18, 2-core CPU, ``python benchmarks/adabn_probe.py --scenes
pets_split,pets_split_x0.75,pets_split_x0.5,pets_split_o128,pets_split_o256,pets_split_o384,samples``, 12.5 min,
one run, deterministic; the harvesting runs are ``adapt_scenes.py``'s of sessions 17 and 18):

| scene | crops | run | AdaBN next run | change |
|---|---|---|---|---|
| pets_split (halves) | 965 | 0.831 | 0.794 | -3.6 |
| pets_split_x0.75 | 946 | 0.825 | 0.786 | -4.0 |
| pets_split_x0.5 | 851 | 0.659 | 0.661 | +0.2 |
| pets_split_o128 | 1130 | 0.753 | 0.753 | +0.0 |
| pets_split_o256 | 1341 | 0.653 | 0.640 | -1.3 |
| pets_split_o384 | 1481 | 0.603 | 0.597 | -0.6 |
| samples | 242 | 0.968 | 0.968 | +0.0 |

Re-estimated statistics do not help either (mean -1.6 points on PETS's six virtual cameras): a thousand crops
of 19 similarly dressed people hold too little to tell them apart better than MSMT17's statistics do.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the project's packages when run as a script from anywhere
START = REPO.parent / "shared/weights/osnet_x0_25_msmt17.pth"
RESULTS = REPO / "benchmarks/results/adapt"
OUT = REPO / "benchmarks/results/adabn"


def adabn_checkpoint(run_dir: Path, out: Path, batch: int = 64) -> Path:
    """Write ``START`` with its BatchNorm statistics re-estimated on ``run_dir/crops``; returns the path."""
    import torch
    from torch import nn

    from reid.data.manifest import HarvestedCrops
    from reid.embedder import prepare_batch
    from reid.models.common import NormalizedModel
    from reid.weights import load_model, save_checkpoint

    model, meta = load_model(START, arch="osnet_x0_25")
    crops = HarvestedCrops(run_dir / "crops/manifest.csv")
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over every batch
    net = NormalizedModel(model, meta.get("mean", (0.485, 0.456, 0.406)), meta.get("std", (0.229, 0.224, 0.225)))
    net.train()
    size = tuple(meta.get("input_size", (256, 128)))
    order = np.random.default_rng(0).permutation(len(crops))
    with torch.no_grad():
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            if len(idx) > 1:  # a batch of one has no variance
                net(torch.from_numpy(prepare_batch([crops.read(int(i)) for i in idx], size, 0)))
    model.eval()
    return save_checkpoint(out, model, "osnet_x0_25")


def scene_row(scene: str) -> dict:
    from benchmarks.adapt_scenes import ground_truth, scene_config
    from pipeline.evaluation.evaluate import evaluate_paths

    folder = RESULTS / scene
    run_dir = folder / "run"
    if not (run_dir / "crops/manifest.csv").is_file():
        raise SystemExit(f"missing {run_dir}/crops: run benchmarks/adapt_scenes.py --scenes {scene} first")
    gt = ground_truth(scene, folder)
    if gt is None:
        raise SystemExit(f"{scene} has no ground truth")
    config, extra = scene_config(scene, folder)
    out = OUT / scene
    shutil.rmtree(out, ignore_errors=True)
    checkpoint = adabn_checkpoint(run_dir, out / "adabn.pth")
    cmd = [sys.executable, "-m", "pipeline.run", "--cameras", str(config), "--out", str(out / "next_run"),
           "--no-progress", *extra, "--reid", str(checkpoint)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    summary = json.loads((run_dir / "summary.json").read_text())
    idf1 = {k: evaluate_paths(gt, f / "mot_global")["multicamera"]["idf1"] for k, f in
            (("run", run_dir), ("adabn", out / "next_run"))}  # fmt: skip
    return {"scene": scene, "crops": summary.get("crops"), **idf1}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--scenes",
        default="pets_split,pets_split_x0.75,pets_split_x0.5,pets_split_o128,pets_split_o256,pets_split_o384,samples",
    )
    args = p.parse_args(argv)
    rows = [scene_row(s) for s in args.scenes.split(",")]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "scenes.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| scene | crops | run | AdaBN next run | change |\n|---|---|---|---|---|")
    for r in rows:
        change = 100 * (r["adabn"] - r["run"])
        print(f"| {r['scene']} | {r['crops']} | {r['run']:.3f} | {r['adabn']:.3f} | {change:+.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
