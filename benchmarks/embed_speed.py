"""Embedding throughput and peak memory of the ReID embedder, PyTorch vs onnxruntime vs OpenVINO, on this machine.

    python benchmarks/embed_speed.py [--weights W --arch A] [--threads 2] [--batches 10] [--repeats 3]

Each backend runs in its own fresh process, so its peak RSS is its own (the onnx and openvino processes
load a ``.onnx`` exported beforehand and never import torch): load the embedder, one warm-up batch, then ``--repeats``
timed runs of ``--batches`` batches of ``--batch-size`` crops. crops/s counts the whole embedder call
(resize + normalise + forward + L2); "prep ms" is the resize + stack share of one batch. Crops are cut
from PETS09 vtest.avi with its ground-truth boxes when ``../shared`` is present, random-size noise
otherwise. The table gives the median over repeats and the min..max range.

Measured 2026-12-01 on the 2-core CPU development machine (Xeon with AMX, no GPU) while another
developer's training job held about one core, OSNet x0.25 MSMT17 (f32 everywhere):

    python benchmarks/embed_speed.py --batch-size 64 --threads 2

| backend | crops/s (median) | min..max | ms/batch | prep ms | peak RSS MB |
|---|---|---|---|---|---|
| torch | 27.2 | 18..91 | 2353.8 | 13.5 | 1016 |
| onnx | 158.0 | 155..159 | 405.1 | 15.5 | 344 |
| openvino | 335.8 | 320..337 | 190.6 | 13.2 | 349 |

    python benchmarks/embed_speed.py --batch-size 2 --threads 1 --batches 100   # the pipeline's regime

| backend | crops/s (median) | min..max | ms/batch | prep ms | peak RSS MB |
|---|---|---|---|---|---|
| torch | 48.7 | 49..49 | 41.0 | 0.3 | 764 |
| onnx | 83.9 | 84..84 | 23.8 | 0.4 | 122 |
| openvino | 212.6 | 205..217 | 9.4 | 0.4 | 169 |

torch's OpenMP threads suffer most from a busy machine (its 2-thread min..max spans 18..91).

``openvino-bf16`` (``precision="bf16"``: bfloat16 on the CPU's AMX units; unit embeddings at cosine >= 0.99
to f32) against f32, 2026-12-02, nothing else running here (the host's speed moved that evening, see
``pets_tracking.py``):

    python benchmarks/embed_speed.py --batch-size 16 --threads 1 --batches 30 --repeats 5 \\
        --backends onnx openvino openvino-bf16
    python benchmarks/embed_speed.py --batch-size 2 --threads 1 --batches 200 --repeats 5 \\
        --backends openvino openvino-bf16

| backend | batch | crops/s (median) | min..max | ms/batch | peak RSS MB |
|---|---|---|---|---|---|
| onnx | 16 | 84.6 | 84..86 | 189.1 | 182 |
| openvino | 16 | 226.4 | 218..234 | 70.7 | 217 |
| openvino-bf16 | 16 | 389.2 | 375..394 | 41.1 | 201 |
| openvino | 2 | 219.6 | 214..224 | 9.1 | 176 |
| openvino-bf16 | 2 | 320.7 | 315..324 | 6.2 | 174 |

f32 gains nothing from the bigger batch; bf16 gains 21 % more from it, which is why the pipeline groups the
crops of 16 camera frames into one call (``embed.group_frames``) and runs bf16 where the CPU has it
(``embed.precision: auto``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the project's packages when run as a script from anywhere
SHARED = Path(os.environ.get("MCPA_SHARED", REPO.parent / "shared"))
DEFAULT_WEIGHTS = SHARED / "weights" / "osnet_x0_25_msmt17.pth"
BACKENDS = ["torch", "onnx", "openvino", "openvino-bf16"]  # openvino-bf16 fails on a CPU without bf16 units


def benchmark_crops(count: int) -> tuple[list[np.ndarray], str]:
    """``count`` BGR person crops from vtest.avi (GT boxes, first frames), or random-size noise crops."""
    video, gt_file = SHARED / "data/pets09_s2l1/vtest.avi", SHARED / "data/pets09_s2l1/mot15/gt.txt"
    rng = np.random.default_rng(0)
    if not (video.exists() and gt_file.exists()):
        sizes = rng.integers(40, 200, size=(count, 2))
        return [rng.integers(0, 256, (h, w // 2 + 10, 3), dtype=np.uint8) for h, w in sizes], "random noise"
    import cv2

    gt = np.loadtxt(gt_file, delimiter=",")
    capture, crops, index = cv2.VideoCapture(str(video)), [], 0
    while len(crops) < count:
        ok, frame = capture.read()
        if not ok:
            break
        for x, y, w, h in gt[gt[:, 0] == index + 1, 2:6]:
            crops.append(frame[max(int(y), 0) : int(y + h), max(int(x), 0) : int(x + w)])
        index += 1
    capture.release()
    return crops[:count], f"vtest.avi GT crops (frames 0..{index - 1})"


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM). ``getrusage`` is not used: on Linux its ru_maxrss keeps
    the peak of the forked parent across exec, which would charge the exporter's torch to onnx."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; bytes on macOS


def child(args: argparse.Namespace) -> None:
    """Measure one backend in this process and print one JSON line."""
    from reid import load_embedder
    from reid.embedder import prepare_batch

    if args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)
    backend, _, precision = args.backend.partition("-")  # "openvino-bf16": OpenVINO in bfloat16
    embedder = load_embedder(
        str(args.weights), device="cpu", arch=args.arch or None, batch_size=args.batch_size,
        backend=backend, threads=args.threads, precision=precision or "f32",
    )  # fmt: skip
    crops, source = benchmark_crops(args.batch_size)
    embedder(crops)  # warm-up
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.batches):
            embedder(crops)
        rates.append(args.batches * len(crops) / (time.perf_counter() - start))
    peak_mb = peak_rss_mb()
    prep = []
    for _ in range(args.repeats):  # the resize + stack share of the time
        start = time.perf_counter()
        prepare_batch(crops, embedder.input_size)
        prep.append(1000 * (time.perf_counter() - start))
    result = {"backend": args.backend, "rates": rates, "prep_ms": statistics.median(prep), "peak_rss_mb": peak_mb}
    print(json.dumps({**result, "crops": source}))


def run_backend(args: argparse.Namespace, backend: str, weights: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--backend", backend, "--weights", str(weights),
           "--threads", str(args.threads), "--batches", str(args.batches), "--repeats", str(args.repeats),
           "--batch-size", str(args.batch_size)] + (["--arch", args.arch] if args.arch else [])  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{backend} benchmark failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--arch", default="osnet_x0_25", help="needed for zoo state dicts; '' for ours")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads for both backends")
    parser.add_argument("--batches", type=int, default=10, help="timed batches per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="torch", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.weights.exists():
        raise SystemExit(f"weights file not found: {args.weights} (pass --weights)")
    if args.child:
        return child(args)
    with tempfile.TemporaryDirectory() as tmp:
        if set(args.backends) - {"torch"}:  # export first: those processes never import torch
            from reid.export import export_onnx

            onnx_file = export_onnx(args.weights, Path(tmp) / "model.onnx", arch=args.arch or None)
        results = [
            run_backend(args, backend, args.weights if backend == "torch" else onnx_file) for backend in args.backends
        ]
    print(
        f"embedder speed: {args.weights.name} ({args.arch or 'arch from checkpoint'}), batch {args.batch_size}, "
        f"{args.threads} thread(s), {args.batches} batches x {args.repeats} repeats; crops: {results[0]['crops']}"
    )
    print(
        f"{'backend':<13} {'crops/s (median)':>16} {'min..max':>12} {'ms/batch':>9} {'prep ms':>8} {'peak RSS MB':>12}"
    )
    for res in results:
        med = statistics.median(res["rates"])
        spread = f"{min(res['rates']):.0f}..{max(res['rates']):.0f}"
        ms = 1000 * args.batch_size / med
        row = f"{res['backend']:<13} {med:>16.1f} {spread:>12} {ms:>9.1f} {res['prep_ms']:>8.1f}"
        print(f"{row} {res['peak_rss_mb']:>12.0f}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "results": results}))


if __name__ == "__main__":
    main()
