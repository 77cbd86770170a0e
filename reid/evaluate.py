"""Evaluate a ReID embedder on Market-1501: ``python -m reid.evaluate --root PATH --weights W``.

Protocol: the 3,368 queries against ``bounding_box_test`` without its junk images (pid -1; torchreid drops
them at load time too, and ``evaluate_rank`` would ignore them anyway), so the gallery holds 15,913
images incl. the 2,798 distractors (pid 0). Features are the embedder's unit vectors; the distance is the cosine
distance ``1 - q . g`` (the same ranking as euclidean distance on unit vectors). ``--rerank`` adds
k-reciprocal re-ranking (k1=20, k2=6, lambda=0.3). Nothing is cached: every run embeds every image.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from reid.console import progress, setup_logging
from reid.data.market1501 import JUNK_PID, ImageRecord, Market1501
from reid.metrics import evaluate_rank
from reid.rerank import re_rank

logger = logging.getLogger(__name__)

Embed = Callable[[list[np.ndarray]], np.ndarray]


class FlipAveraged:
    """Wrap an embedder: sum the features of each crop and its mirror image, then L2-normalise."""

    def __init__(self, embedder: Embed) -> None:
        self.embedder = embedder
        self.embedding_dim = getattr(embedder, "embedding_dim", None)

    def __call__(self, crops: list[np.ndarray]) -> np.ndarray:
        feats = self.embedder(crops) + self.embedder([np.ascontiguousarray(c[:, ::-1]) for c in crops])
        return (feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def build_embedder(
    weights: str,
    arch: str | None = None,
    device: str = "auto",
    batch_size: int = 64,
    flip: bool = False,
    backend: str = "torch",
    threads: int | None = None,
) -> Embed:
    """``"classical"`` -> the colour-histogram embedder, otherwise ``reid.load_embedder(weights, ...)``.

    ``threads`` sets onnxruntime's intra-op or OpenVINO's inference threads; torch's are the caller's.
    """
    if weights == "classical":
        from reid.classical import ClassicalEmbedder

        embedder = ClassicalEmbedder()
        return FlipAveraged(embedder) if flip else embedder
    from reid import load_embedder

    extra = {"threads": threads} if threads is not None else {}
    return load_embedder(weights, device=device, arch=arch, batch_size=batch_size, flip=flip, backend=backend, **extra)


def embed_records(
    embedder: Embed,
    market: Market1501,
    records: Sequence[ImageRecord],
    batch_size: int = 64,
    desc: str = "embedding",
) -> np.ndarray:
    """Embed images in batches, decoding the next batch in threads while the current one is embedded.

    Returns:
        (N, D) float32 features in the order of ``records``.
    """
    batches = [records[s : s + batch_size] for s in range(0, len(records), batch_size)]
    out: list[np.ndarray] = []

    def decode(batch: Sequence[ImageRecord]) -> list[np.ndarray]:
        return [market.read(r) for r in batch]

    with ThreadPoolExecutor(2) as pool, progress(total=len(records), desc=desc, unit="img") as bar:
        pending = deque(pool.submit(decode, b) for b in batches[:2])
        for i in range(len(batches)):
            crops = pending.popleft().result()
            if i + 2 < len(batches):
                pending.append(pool.submit(decode, batches[i + 2]))
            out.append(np.asarray(embedder(crops), dtype=np.float32))
            bar.update(len(crops))
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def cosine_distance(q: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(Q, D), (G, D) unit rows -> (Q, G) float32 ``1 - q . g``."""
    return (1.0 - q @ g.T).astype(np.float32)


def summarize(result: dict) -> dict[str, float]:
    """``evaluate_rank`` output -> percentages ``{"rank1", "rank5", "rank10", "mAP", "mINP"}``."""
    cmc = result["cmc"]
    ranks = {f"rank{k}": 100.0 * float(cmc[min(k, len(cmc)) - 1]) for k in (1, 5, 10)}
    return {**ranks, "mAP": 100.0 * result["mAP"], "mINP": 100.0 * result["mINP"]}


def evaluate_features(
    q_feats: np.ndarray,
    g_feats: np.ndarray,
    labels: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    rerank: bool = False,
) -> dict[str, float]:
    """Metrics (percent) of query/gallery features; ``labels`` = (q_pids, g_pids, q_camids, g_camids)."""
    q_pids, g_pids, q_camids, g_camids = labels
    dist = re_rank(q_feats, g_feats) if rerank else cosine_distance(q_feats, g_feats)
    return summarize(evaluate_rank(dist, q_pids, g_pids, q_camids, g_camids))


def market_eval_split(market: Market1501) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """Query records and gallery records without junk."""
    return list(market.query), [r for r in market.gallery if r.pid != JUNK_PID]


def split_labels(query: list[ImageRecord], gallery: list[ImageRecord]) -> tuple[np.ndarray, ...]:
    """``(q_pids, g_pids, q_camids, g_camids)``, each (N,) int64, in the argument order of evaluate_rank."""

    def arr(records: list[ImageRecord], field: str) -> np.ndarray:
        return np.asarray([getattr(r, field) for r in records], dtype=np.int64)

    return arr(query, "pid"), arr(gallery, "pid"), arr(query, "camid"), arr(gallery, "camid")


def run_market(market: Market1501, embedder: Embed, batch_size: int = 64, rerank: bool = False) -> dict:
    """Embed Market-1501's query and gallery and evaluate; timings in seconds."""
    query, gallery = market_eval_split(market)
    t0 = time.perf_counter()
    q_feats = embed_records(embedder, market, query, batch_size, "query")
    g_feats = embed_records(embedder, market, gallery, batch_size, "gallery")
    t1 = time.perf_counter()
    labels = split_labels(query, gallery)
    results: dict = {
        "num_query": len(query),
        "num_gallery": len(gallery),
        "plain": evaluate_features(q_feats, g_feats, labels),
    }
    t2 = time.perf_counter()
    timing = {"embed_s": t1 - t0, "eval_s": t2 - t1}
    if rerank:
        results["rerank"] = evaluate_features(q_feats, g_feats, labels, rerank=True)
        timing["rerank_eval_s"] = time.perf_counter() - t2
    results["timing"] = timing
    return results


def format_table(results: dict) -> str:
    """Markdown table of the ``plain`` / ``rerank`` rows of :func:`run_market` results."""
    lines = ["| ranking | Rank-1 | Rank-5 | Rank-10 | mAP | mINP |", "| --- | --- | --- | --- | --- | --- |"]
    for name in ("plain", "rerank"):
        if name in results:
            m = results[name]
            lines.append(
                f"| {name} | {m['rank1']:.1f} | {m['rank5']:.1f} | {m['rank10']:.1f} | "
                f"{m['mAP']:.1f} | {m['mINP']:.1f} |"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m reid.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="market1501", choices=["market1501"])
    p.add_argument("--root", required=True, help="Market-1501 zip or extracted folder")
    p.add_argument("--weights", required=True, help="checkpoint / torchreid zoo file / .onnx, or 'classical'")
    p.add_argument("--arch", default=None, help="architecture of a bare torchreid state dict, e.g. osnet_x0_25")
    p.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranking")
    p.add_argument("--flip", action="store_true", help="average features with horizontally flipped crops")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx", "openvino"], help="inference backend")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch / onnxruntime")
    p.add_argument("--json", default=None, help="write the metrics and timings to this JSON file")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error(f"--batch-size: expected >= 1, got {args.batch_size}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    setup_logging("INFO")
    args = parse_args(argv)
    market = Market1501(args.root)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    embedder = build_embedder(
        args.weights, args.arch, args.device, args.batch_size, args.flip, args.backend, args.threads
    )
    results = run_market(market, embedder, args.batch_size, args.rerank)
    results["config"] = {k: v for k, v in vars(args).items() if k != "json"}
    print(
        f"Market-1501: {results['num_query']} queries, {results['num_gallery']} gallery images; "
        f"weights={args.weights} flip={args.flip}"
    )
    print(format_table(results))
    t = results["timing"]
    print(
        f"embed {t['embed_s']:.1f} s, eval {t['eval_s']:.1f} s"
        + (f", re-rank {t['rerank_eval_s']:.1f} s" if "rerank_eval_s" in t else "")
    )
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ValueError, FileNotFoundError) as exc:
        sys.exit(f"reid.evaluate: error: {exc}")
