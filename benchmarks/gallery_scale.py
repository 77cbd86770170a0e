"""Gallery search latency, memory and IVF recall at 10k-1M 512-d prototypes, against NumPy brute force.

    python benchmarks/gallery_scale.py --sizes 10000,100000,1000000

Data: "clustered" mimics ReID embeddings (appearance modes -> identities -> 4 prototypes each, all on
the unit sphere; queries are fresh samples of gallery identities); "uniform" is uniform on the sphere
(the worst case for IVF). Recall@1 = share of queries whose best identity from IVF equals the exact
(flat) one. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import time
from collections.abc import Callable

import numpy as np

from pipeline.identity.gallery import Gallery, default_nlist, default_nprobe

PROTOS_PER_ID = 4
logger = logging.getLogger("gallery_scale")


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _noise_scale(cos: float, dim: int) -> float:
    """Per-dimension std of Gaussian noise that puts a unit vector at cosine ~``cos`` to where it was."""
    return float(np.sqrt(1.0 / cos**2 - 1.0) / np.sqrt(dim))


def make_data(kind: str, n: int, dim: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prototypes (n, dim), identity labels (n,), queries (n_queries, dim)), all float32 unit rows."""
    rng = np.random.default_rng(seed)
    n_ids = n // PROTOS_PER_ID
    labels = np.repeat(np.arange(n_ids), PROTOS_PER_ID)
    if kind == "uniform":
        protos = _unit(rng.standard_normal((n, dim), np.float32))
        return protos, labels, _unit(rng.standard_normal((n_queries, dim), np.float32))
    # 64 appearance modes (clothing), identities at cos ~0.85 to their mode, prototypes at ~0.8 to their
    # identity and queries at ~0.6: the true identity scores ~0.5 and the runner-up ~0.45, a harder
    # gallery than real ReID features (same person ~0.6-0.8, look-alikes ~0.3-0.5).
    modes = _unit(rng.standard_normal((64, dim), np.float32))
    centers = modes[rng.integers(0, len(modes), n_ids)]
    centers = _unit(centers + rng.standard_normal((n_ids, dim), np.float32) * _noise_scale(0.85, dim))
    protos = np.empty((n, dim), np.float32)
    for start in range(0, n, 65536):  # chunks keep the temporaries small at 1M
        part = centers[labels[start : start + 65536]]
        protos[start : start + len(part)] = _unit(
            part + rng.standard_normal(part.shape, np.float32) * _noise_scale(0.8, dim)
        )
    asked = rng.integers(0, n_ids, n_queries)
    queries = _unit(centers[asked] + rng.standard_normal((n_queries, dim), np.float32) * _noise_scale(0.6, dim))
    return protos, labels, queries


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def latency_ms(search, queries: np.ndarray, batch: int, budget_s: float) -> tuple[float, float]:
    """p50 and p99 of ``search(batch of queries)`` in ms, repeating within ``budget_s`` (5 to 200 runs)."""
    times = []
    start = time.perf_counter()
    i = 0
    while len(times) < 200 and (len(times) < 5 or time.perf_counter() - start < budget_s):
        q = queries[(i * batch) % len(queries) :][:batch]
        if len(q) < batch:
            q = queries[:batch]
        t0 = time.perf_counter()
        search(q)
        times.append((time.perf_counter() - t0) * 1000)
        i += 1
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def numpy_search(vectors: np.ndarray, labels: np.ndarray, k: int):
    """Brute force: scores of all prototypes, then the best prototype per identity for the top k."""

    def search(q: np.ndarray) -> np.ndarray:
        scores = q @ vectors.T
        fetch = min(scores.shape[1] - 1, k * PROTOS_PER_ID)
        top = np.argpartition(-scores, fetch, axis=1)[:, : fetch + 1]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        return labels[np.take_along_axis(top, order, 1)]

    return search


def build(
    index: str, protos: np.ndarray, labels: np.ndarray, queries: np.ndarray, args: argparse.Namespace
) -> tuple[Callable[[np.ndarray], np.ndarray], np.ndarray, float, float, str, str]:
    """(search(q) -> ids, top-1 ids of the recall queries, build seconds, memory MB, index kind, params)."""
    if index == "numpy":
        search = numpy_search(protos, labels, args.k)
        # 64 queries at a time: the (queries, n) score matrix of 1000 queries at 1M would need 4 GB
        top1 = np.concatenate([search(queries[i : i + 64])[:, 0] for i in range(0, args.queries, 64)])
        return search, top1, float("nan"), protos.nbytes / 2**20, "numpy", "-"
    t0 = time.perf_counter()
    gallery = Gallery(protos.shape[1], index=index, device=args.device)
    gallery.add_identities(protos, labels, "cam", 0.0)
    gallery.search(queries[:1], args.k)  # builds the index: part of the build time, not of the searches
    build_s = time.perf_counter() - t0
    nlist = default_nlist(len(protos))
    params = f"nlist={nlist} nprobe={default_nprobe(nlist)}" if gallery.built_kind == "ivf" else "-"

    def search(q: np.ndarray) -> np.ndarray:
        return gallery.search(q, args.k)[1]

    top1 = gallery.search(queries[: args.queries], 1)[1][:, 0]
    return search, top1, build_s, gallery.memory_bytes() / 2**20, gallery.built_kind, params


def bench_one(kind: str, n: int, dim: int, args: argparse.Namespace) -> list[dict]:
    protos, labels, queries = make_data(kind, n, dim, max(args.queries, 64))
    rows, truth = [], None
    for index in ("numpy", "flat", "ivf"):
        gc.collect()
        search, top1, build_s, mem_mb, kind_built, params = build(index, protos, labels, queries, args)
        truth = top1 if index == "flat" else truth
        recall = float(np.mean(top1 == truth)) if index == "ivf" else float("nan")
        p50_1, p99_1 = latency_ms(search, queries, 1, args.budget)
        p50_b, p99_b = latency_ms(search, queries, 64, args.budget)
        row = {
            "data": kind,
            "n": n,
            "index": kind_built,
            "params": params,
            "build_s": build_s,
            "p50_1": p50_1,
            "p99_1": p99_1,
            "p50_64": p50_b,
            "p99_64": p99_b,
            "mem_mb": mem_mb,
            "recall": recall,
        }
        rows.append(row)
        logger.info("%s", row)
        del search
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated prototype counts")
    parser.add_argument("--data", default="clustered,uniform", help="clustered and/or uniform")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--k", type=int, default=10, help="identities returned per query")
    parser.add_argument("--queries", type=int, default=1000, help="queries for recall@1")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds of timed searches per cell")
    parser.add_argument("--device", default="auto", help="Gallery device: auto, cpu, cuda")
    parser.add_argument("--threads", type=int, default=0, help="faiss OpenMP threads (0 = faiss default)")
    args = parser.parse_args()
    import faiss

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    rows = []
    for kind in args.data.split(","):
        for n in (int(s) for s in args.sizes.split(",")):
            rows.extend(bench_one(kind, n, args.dim, args))
    print(
        f"\n{args.dim}-d, k={args.k} identities/query, {PROTOS_PER_ID} prototypes/identity, faiss threads "
        f"{faiss.omp_get_max_threads()}. Memory: Gallery.memory_bytes() (its master copy + the faiss index); "
        f"NumPy: the array it searches. Peak RSS of the run: {peak_rss_mb():.0f} MB.\n"
    )
    print(
        "| data | prototypes | index | params | build s | 1 query p50 / p99 ms | 64 queries p50 / p99 ms "
        "| memory MB | recall@1 vs flat |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        recall = "-" if np.isnan(r["recall"]) else f"{r['recall']:.3f}"
        build_s = "-" if np.isnan(r["build_s"]) else f"{r['build_s']:.1f}"
        print(
            f"| {r['data']} | {r['n']:,} | {r['index']} | {r['params']} | {build_s} | "
            f"{r['p50_1']:.2f} / {r['p99_1']:.2f} | {r['p50_64']:.1f} / {r['p99_64']:.1f} | "
            f"{r['mem_mb']:.0f} | {recall} |"
        )


if __name__ == "__main__":
    main()
