"""Market-1501 table for the classical embedder and the OSNet x0.25 zoo weights: plain / +flip / +rerank.

    nice -n 10 python benchmarks/market_eval.py [--models classical osnet_x0_25_msmt17 ...] [--json OUT]

Each model is embedded twice (without and with flip averaging); each embedding is scored with the cosine
distance and with k-reciprocal re-ranking. "wall s" of a row = embedding time of its features + that
row's scoring time (so the re-ranked rows include their embedding, too). Prints a markdown table.
Reads the data and weights in place from ``../shared`` (see shared/README.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from reid.data.market1501 import Market1501
from reid.evaluate import build_embedder, embed_records, evaluate_features, market_eval_split, split_labels

REPO = Path(__file__).resolve().parents[1]
logger = logging.getLogger("market_eval")
SHARED = REPO.parent / "shared"
# name -> (weights, arch)
MODELS = {
    "classical": ("classical", None),
    "osnet_x0_25_msmt17": (str(SHARED / "weights/osnet_x0_25_msmt17.pth"), "osnet_x0_25"),
    "osnet_x0_25_market1501": (str(SHARED / "weights/osnet_x0_25_market1501.pth"), "osnet_x0_25"),
}


def run_model(name: str, market: Market1501, args: argparse.Namespace) -> list[dict]:
    """Rows (plain, +rerank, +flip, +flip+rerank) of one model."""
    weights, arch = MODELS[name]
    query, gallery = market_eval_split(market)
    labels = split_labels(query, gallery)
    rows = []
    for flip in (False, True):
        embedder = build_embedder(weights, arch, args.device, args.batch_size, flip, args.backend, args.threads)
        t0 = time.perf_counter()
        q = embed_records(embedder, market, query, args.batch_size, f"{name} query")
        g = embed_records(embedder, market, gallery, args.batch_size, f"{name} gallery")
        embed_s = time.perf_counter() - t0
        for rerank in (False, True) if not args.no_rerank else (False,):
            t1 = time.perf_counter()
            metrics = evaluate_features(q, g, labels, rerank=rerank)
            variant = "+".join(v for v, on in (("flip", flip), ("rerank", rerank)) if on) or "plain"
            row = {"model": name, "variant": variant, **metrics, "wall_s": embed_s + time.perf_counter() - t1}
            rows.append(row)
            logger.info("%s", row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | variant | Rank-1 | Rank-5 | Rank-10 | mAP | mINP | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['variant']} | {r['rank1']:.1f} | {r['rank5']:.1f} | {r['rank10']:.1f} | "
            f"{r['mAP']:.1f} | {r['mINP']:.1f} | {r['wall_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(SHARED / "data/market1501/Market-1501-v15.09.15.zip"))
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"])
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch / onnxruntime")
    p.add_argument("--no-rerank", action="store_true")
    p.add_argument("--json", default=None, help="also write the rows as JSON")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    market = Market1501(args.root, expect_official=True)
    rows = []
    for name in args.models:
        rows += run_model(name, market, args)
        print(markdown(rows), flush=True)  # the table so far, in case a later model fails
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
