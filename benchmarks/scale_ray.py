"""The Ray engine against the single-process engine on this machine, the cost of the actor boundary, and
a cost model of how many machines N cameras need.

    python benchmarks/scale_ray.py [--repeats 3] [--cameras 3,6,12,24] [--workers 1,2] [--frames 150]

1. **Throughput.** The samples (3 cameras, 250 frames each, weight-free: background subtraction + the
   classical embedder, offline re-clustering) and then 6-24 cameras made of the same three clips (the first
   ``--frames`` frames each), run by the local engine and by the Ray engine with 1 and 2 camera workers, in
   the same benchmark run, on one local Ray cluster started once. fps = camera frames / seconds of the
   streaming loop (``summary.json``; the one-off start of the Ray cluster is reported apart). Median of
   ``--repeats``; the multi-camera IDF1 of each samples run against their ground truth.
2. **Boundary.** The TrackletUpdates of one samples run, replayed batch by batch into a LinkStep in this
   process and into the identity service actor: the difference is the boundary's cost per camera frame.
   Bytes per frame of the updates (pickled, what crosses to the identity service), of the per-frame results a
   worker returns to the driver (boxes and ids), and bytes per identity event.
3. **Cost model.** From the measured per-frame seconds: camera frames per second one core sustains, the
   identity service's capacity in camera frames per second, and the machines N cameras at 10 fps need.
   A GPU node's line takes its detector time from ``--gpu-detect-ms`` (an assumption, printed as such: no
   GPU was measured here unless the flag says so).

Results (2-core CPU dev machine, no GPU, 2026-12-01, ``--repeats 3``, machine otherwise idle):

| cameras | engine | camera frames | fps (loop) | vs local | command s | multi-camera IDF1 | update B/frame |
|---|---|---|---|---|---|---|---|
| 3 | local | 750 | 218.1 | 1.00 | 3.6 | 0.948 | - |
| 3 | ray, 1 worker(s) | 750 | 187.4 | 0.86 | 6.3 | 0.948 | 601.0 |
| 3 | ray, 2 worker(s) | 750 | 191.7 | 0.88 | 6.3 | 0.948 | 601.0 |
| 6 | local | 900 | 231.5 | 1.00 | 4.1 | - | - |
| 6 | ray, 1 worker(s) | 900 | 189.2 | 0.82 | 7.2 | - | 629.6 |
| 6 | ray, 2 worker(s) | 900 | 216.1 | 0.93 | 6.7 | - | 629.6 |
| 12 | local | 1800 | 257.2 | 1.00 | 7.4 | - | - |
| 12 | ray, 1 worker(s) | 1800 | 222.3 | 0.86 | 10.6 | - | 629.6 |
| 12 | ray, 2 worker(s) | 1800 | 245.7 | 0.96 | 10.0 | - | 629.6 |
| 24 | local | 3600 | 258.4 | 1.00 | 14.8 | - | - |
| 24 | ray, 1 worker(s) | 3600 | 229.1 | 0.89 | 18.7 | - | 629.6 |
| 24 | ray, 2 worker(s) | 3600 | 267.6 | 1.04 | 16.8 | - | 629.6 |

Boundary (750 camera frames in 42 calls): linking in-process 0.220 ms/frame, through the actor 0.349 ms/frame,
so the boundary costs 0.129 ms per camera frame (2.3 ms per call). Bytes per camera frame: 791 to the identity
service (pickled updates), 344 back to the driver (boxes and ids); 33 bytes per identity event. The local
cluster starts in 2-3 s (the "command s" column includes it and the actors' start).

Cost model (YOLOv8n INT8 OpenVINO + classical ReID, local engine, samples): 38.0 camera frames/s on 2 cores =
52.7 core-ms per camera frame, 92 % of it detection; one identity service links 2865 camera frames/s on one
core (286 cameras at 10 fps).

| cameras at 10 fps | camera-frames/s | 16-core CPU nodes | GPU nodes (16 cores + 1 GPU, assumed) | service load |
|---|---|---|---|---|
| 10 | 100 | 1 | 1 | 3 % |
| 50 | 500 | 2 | 1 | 17 % |
| 100 | 1000 | 4 | 2 | 35 % |
| 500 | 5000 | 17 | 10 | 175 % |

GPU nodes assume 2.0 ms of detection per frame on the GPU (not measured: no GPU on this machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pickle
import shutil
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SAMPLES = REPO / "sample_videos"


def config(n_cameras: int, frames: int | None):
    from configs import config_from_dict

    cams = [{"id": f"c{i:02d}", "source": str(SAMPLES / f"cam{i % 3}.mp4"), "max_frames": frames}
            for i in range(n_cameras)]  # fmt: skip
    if n_cameras == 3:  # the samples themselves, named as their ground truth
        for i, cam in enumerate(cams):
            cam["id"] = f"cam{i}"
    return config_from_dict({
        "cameras": cams, "detector": {"backend": "bgsub"}, "embed": {"weights": "classical"},
        "linking": {"offline": True}, "outputs": {"progress": False},
    })  # fmt: skip


def run_once(engine: str, cfg, out: Path, workers: int) -> dict:
    from detectors import detector_from_config
    from pipeline.distributed.engine import run_ray
    from pipeline.embed import build_embedder
    from pipeline.engine import run_pipeline

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    if engine == "local":
        summary = run_pipeline(cfg, out, detector_from_config(cfg.detector), progress=False,
                               embedder=build_embedder(cfg))  # fmt: skip
    else:
        summary = run_ray(cfg, out, workers=workers, progress=False)
    summary["command_s"] = time.perf_counter() - started
    return summary


def idf1(out: Path) -> float:
    from pipeline.evaluation.evaluate import evaluate_folders

    return evaluate_folders(SAMPLES / "gt", out / "mot_global")["multicamera"]["idf1"]


def throughput(args: argparse.Namespace) -> tuple[list[dict], dict]:
    rows, local_costs = [], {}
    variants = [("local", 1)] + [("ray", w) for w in args.workers]
    for n in args.cameras:
        frames = None if n == 3 else args.frames
        cfg = config(n, frames)
        for engine, workers in variants:
            runs = [run_once(engine, cfg, args.out / f"{engine}{workers}_{n}", workers) for _ in range(args.repeats)]
            fps = statistics.median(r["fps"]["end_to_end"] for r in runs)
            command_s = statistics.median(r["command_s"] for r in runs)
            row = {"cameras": n, "engine": engine if engine == "local" else f"ray, {workers} worker(s)",
                   "frames": runs[0]["frames"], "fps": fps, "command_s": command_s,
                   "idf1": idf1(args.out / f"{engine}{workers}_{n}") if n == 3 else None}  # fmt: skip
            if engine == "ray":
                row["update_bytes_per_frame"] = runs[0]["engine"]["update_bytes_per_frame"]
            if engine == "local" and n == 3:
                local_costs = {k: v / runs[0]["frames"] for k, v in runs[0]["stage_seconds"].items()}
                local_costs["wall"] = statistics.median(r["wall_s"] for r in runs) / runs[0]["frames"]
            rows.append(row)
            print(f"  {n:3d} cameras  {row['engine']:18s} {fps:7.1f} fps", flush=True)
    return rows, local_costs


def boundary(args: argparse.Namespace) -> dict:
    """Replay one samples run's updates into a local LinkStep and into the identity service actor."""
    import ray

    from detectors import detector_from_config
    from pipeline.distributed.service import IdentityService
    from pipeline.distributed.worker import CameraWorker
    from pipeline.embed import build_embedder
    from pipeline.identity.stage import LinkStep

    cfg = config(3, None)
    from pipeline.engine import prepare_sources

    infos = prepare_sources(cfg)
    worker = CameraWorker(cfg, [c.id for c in cfg.cameras], infos, detector=detector_from_config(cfg.detector),
                          embedder=build_embedder(cfg))  # fmt: skip
    recorded: list = []
    link = LinkStep(worker.embedding_dim(), [c.id for c in cfg.cameras], cfg.linking)

    class Recorder:  # the worker's identity service, recording what it is sent
        def update_batches(self, batches):
            recorded.append(batches)
            return [[(t, link.record.global_ids(t)) for t in link(updates)] for updates in batches]

    worker.start(Recorder())
    results = []
    while True:
        result = worker.step(32)
        results.append(result)
        if result.done:
            break
    frames = sum(len(b) for group in recorded for b in group)
    result_bytes = sum(len(pickle.dumps([(f, d) for f, d in r.frames])) for r in results)
    update_bytes = sum(len(pickle.dumps(b)) for b in recorded)
    events = link.record.events
    event_bytes = len(pickle.dumps(events)) / max(len(events), 1)

    local_s, remote_s = [], []
    actor_cls = ray.remote(IdentityService).options(num_cpus=0)
    for _ in range(args.repeats):
        fresh = LinkStep(worker.embedding_dim(), [c.id for c in cfg.cameras], cfg.linking)
        t = time.perf_counter()
        for group in recorded:
            for batch in group:
                [fresh.record.global_ids(x) for x in fresh(batch)]
        local_s.append(time.perf_counter() - t)
        actor = actor_cls.remote(worker.embedding_dim(), [c.id for c in cfg.cameras], cfg.linking)
        ray.get(actor.pid.remote())
        t = time.perf_counter()
        for group in recorded:
            ray.get(actor.update_batches.remote(group))
        remote_s.append(time.perf_counter() - t)
        ray.kill(actor)
    local, remote = statistics.median(local_s), statistics.median(remote_s)
    return {
        "frames": frames, "batches": len(recorded), "link_ms_per_frame": 1000 * local / frames,
        "actor_ms_per_frame": 1000 * remote / frames, "boundary_ms_per_frame": 1000 * (remote - local) / frames,
        "boundary_ms_per_call": 1000 * (remote - local) / len(recorded),
        "update_bytes_per_frame": update_bytes / frames, "result_bytes_per_frame": result_bytes / frames,
        "event_bytes": event_bytes, "events": len(events),
    }  # fmt: skip


def detector_costs(args: argparse.Namespace) -> dict | None:
    """Per camera frame with a real detector (YOLOv8n INT8 OpenVINO from ../shared): core-seconds (cores x
    wall / frames: the machine is saturated) and the detector's share of the stage time (local engine)."""
    weights = REPO.parent / "shared" / "weights" / "yolov8n_int8_openvino_model"
    if not weights.exists():
        print(f"(no {weights}: the cost model uses the weight-free detector's figures)")
        return None
    from detectors import detector_from_config
    from pipeline.embed import build_embedder
    from pipeline.engine import run_pipeline

    cfg = config(3, args.model_frames)
    cfg = dataclasses.replace(cfg, detector=dataclasses.replace(cfg.detector, backend="ultralytics",
                                                                weights=str(weights)))  # fmt: skip
    walls, shares = [], []
    for _ in range(args.repeats):
        out = args.out / "yolo"
        shutil.rmtree(out, ignore_errors=True)
        summary = run_pipeline(
            cfg, out, detector_from_config(cfg.detector), progress=False, embedder=build_embedder(cfg)
        )
        walls.append(summary["wall_s"] / summary["frames"])
        stages = summary["stage_seconds"]
        shares.append(stages.get("detect", 0.0) / max(sum(stages.values()), 1e-9))
    cores = os.cpu_count() or 1
    return {"core_s": cores * statistics.median(walls), "detect_share": statistics.median(shares),
            "fps": 1.0 / statistics.median(walls), "name": "YOLOv8n INT8 OpenVINO + classical ReID"}  # fmt: skip


def cost_model(rows: list[dict], edge: dict, model: dict | None, args: argparse.Namespace) -> list[str]:
    cores = os.cpu_count() or 1
    if model is None:
        best = max((r for r in rows if r["cameras"] == max(args.cameras)), key=lambda r: r["fps"])
        model = {"core_s": cores / best["fps"], "detect_share": 0.0, "fps": best["fps"],
                 "name": "background subtraction + classical ReID"}  # fmt: skip
    service = 1000.0 / max(edge["actor_ms_per_frame"], 1e-9)  # camera frames/s one identity service links
    lines = [
        f"cost model ({model['name']}, local engine on the samples, {cores} cores: {model['fps']:.1f} camera "
        f"frames/s = {1000 * model['core_s']:.1f} core-ms per camera frame, detection "
        f"{100 * model['detect_share']:.0f} % of it); one identity service links {service:.0f} camera frames/s "
        f"on one core (= {service / 10:.0f} cameras at 10 fps)",
        "",
        "| cameras at 10 fps | camera-frames/s | 16-core CPU nodes | GPU nodes, 16 cores + 1 GPU (assumed) "
        "| identity service load |",
        "|---|---|---|---|---|",
    ]
    gpu_frame_s = args.gpu_detect_ms / 1000.0
    cpu_rest = model["core_s"] * (1.0 - model["detect_share"])
    for n in (10, 50, 100, 500):
        load = 10.0 * n
        cpu_nodes = math.ceil(load * model["core_s"] / 16)
        gpu_nodes = math.ceil(max(load * gpu_frame_s, load * cpu_rest / 16))  # GPU-bound or CPU-bound
        lines.append(f"| {n} | {load:.0f} | {cpu_nodes} | {gpu_nodes} | {100 * load / service:.0f} % |")
    lines.append(
        f"GPU nodes: detection at an assumed {args.gpu_detect_ms} ms per frame on one GPU (not measured: no GPU "
        f"here), the rest of each frame ({1000 * cpu_rest:.1f} core-ms) on the node's 16 cores. Above 100 % "
        f"load the one identity service is the bottleneck (it is one actor by design)."
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cameras", default="3,6,12,24", help="camera counts (3 = the samples, full length)")
    p.add_argument("--workers", default="1,2", help="Ray camera-worker counts")
    p.add_argument("--frames", type=int, default=150, help="frames per camera beyond the samples row")
    p.add_argument("--model-frames", type=int, default=100, help="frames per sample camera for the cost model")
    p.add_argument("--gpu-detect-ms", type=float, default=2.0, help="assumed detector ms per frame on a GPU")
    p.add_argument("--out", type=Path, default=Path("/tmp/scale_ray"))
    args = p.parse_args(argv)
    args.cameras = [int(x) for x in args.cameras.split(",")]
    args.workers = [int(x) for x in args.workers.split(",")]
    import logging

    import ray

    from reid.console import setup_logging

    setup_logging("WARNING")
    logging.getLogger("pipeline").setLevel(logging.WARNING)
    t = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="WARNING")
    start_s = time.perf_counter() - t
    print(f"machine: {os.cpu_count()} cores, Ray {ray.__version__}, local cluster started in {start_s:.1f} s")
    rows, _ = throughput(args)
    edge = boundary(args)
    print(
        "\n| cameras | engine | camera frames | fps (loop) | vs local | command s | multi-camera IDF1 | update B/frame"
        " |"
    )
    print("|---|---|---|---|---|---|---|---|")
    local = {r["cameras"]: r["fps"] for r in rows if r["engine"] == "local"}
    for r in rows:
        score = f"{r['idf1']:.3f}" if r["idf1"] is not None else "-"
        ratio = r["fps"] / local[r["cameras"]]
        print(f"| {r['cameras']} | {r['engine']} | {r['frames']} | {r['fps']:.1f} | {ratio:.2f} | "
              f"{r['command_s']:.1f} | {score} | {r.get('update_bytes_per_frame', '-')} |")  # fmt: skip
    print(f"\nboundary ({edge['frames']} camera frames in {edge['batches']} calls, median of {args.repeats}): "
          f"link in-process {edge['link_ms_per_frame']:.3f} ms/frame, through the actor "
          f"{edge['actor_ms_per_frame']:.3f} ms/frame -> boundary {edge['boundary_ms_per_frame']:.3f} ms/frame "
          f"({edge['boundary_ms_per_call']:.3f} ms per call)")  # fmt: skip
    print(f"bytes per camera frame: updates to the identity service {edge['update_bytes_per_frame']:.0f} "
          f"(pickled), results to the driver {edge['result_bytes_per_frame']:.0f}; per identity event "
          f"{edge['event_bytes']:.0f} ({edge['events']} events); frames (images) never cross")  # fmt: skip
    print()
    print("\n".join(cost_model(rows, edge, detector_costs(args), args)))
    ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
