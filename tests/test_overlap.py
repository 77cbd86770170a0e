"""Identity on a worker thread, one batch behind detection, batches grouped for one embedder call: same results,
same order, same ids as inline batch by batch."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from configs import load_config
from pipeline.engine import run_pipeline
from pipeline.overlap import BatchGroups, OverlappedStage, ungrouped

SAMPLES = Path(__file__).resolve().parents[1] / "sample_videos"


class Recorder:
    """A stage that sleeps a little, records the thread and order it ran in, and can fail on one batch."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.seen: list[int] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on

    def __call__(self, batch: int, tracked: str) -> str:
        time.sleep(0.002 * (batch % 3))  # uneven durations: order must still hold
        self.threads.add(threading.current_thread().name)
        self.seen.append(batch)
        if batch == self.fail_on:
            raise RuntimeError(f"stage failed on batch {batch}")
        return f"{tracked}+id"


@pytest.mark.parametrize("depth", [0, 1, 2])
def test_results_come_back_in_order_and_complete(depth: int) -> None:
    stage = Recorder()
    overlapped = OverlappedStage(stage, depth=depth)
    got = []
    for batch in range(10):
        done = overlapped.submit(batch, f"t{batch}")
        assert len(done) <= depth + 1  # at most what was in flight; a batch already finished may come along
        got += done
        assert batch + 1 - len(got) <= depth  # never more than depth batches behind
    got += overlapped.drain()
    overlapped.close()
    assert got == [(b, f"t{b}+id") for b in range(10)] and stage.seen == list(range(10))
    assert (stage.threads == {threading.current_thread().name}) == (depth == 0)
    assert overlapped.seconds > 0


def test_batch_groups_hold_batches_until_they_hold_enough_frames() -> None:
    groups = BatchGroups(frames=5)
    assert groups.add(["a0", "b0"], ["ta0", "tb0"]) is None
    assert groups.add(["a1", "b1"], ["ta1", "tb1"]) is None
    batches, tracked = groups.add(["a2"], ["ta2"])  # 5 camera frames: the group is full
    assert batches == [["a0", "b0"], ["a1", "b1"], ["a2"]] and tracked == [["ta0", "tb0"], ["ta1", "tb1"], ["ta2"]]
    assert groups.flush() is None  # nothing held after a full group
    assert groups.add(["a3", "b3"], ["ta3", "tb3"]) is None
    assert groups.flush() == ([["a3", "b3"]], [["ta3", "tb3"]])
    single = BatchGroups(frames=1)
    assert single.add(["a"], ["t"]) == ([["a"]], [["t"]])
    with pytest.raises(ValueError, match="frames: expected an int >= 1, got 0"):
        BatchGroups(frames=0)


def test_a_group_waits_at_most_max_hold_s() -> None:
    now = [0.0]
    groups = BatchGroups(frames=100, max_hold_s=0.5, clock=lambda: now[0])
    assert groups.add(["a0"], ["t0"]) is None
    now[0] = 0.3
    assert groups.add(["a1"], ["t1"]) is None
    now[0] = 0.5  # the first batch has waited 0.5 s: the group goes, however small
    assert groups.add(["a2"], ["t2"]) == ([["a0"], ["a1"], ["a2"]], [["t0"], ["t1"], ["t2"]])
    now[0] = 10.0
    assert groups.add(["a3"], ["t3"]) is None  # the wait counts from a group's own first batch
    with pytest.raises(ValueError, match="max_hold_s: expected None or seconds >= 0, got -1"):
        BatchGroups(frames=2, max_hold_s=-1)


def test_grouped_stage_results_come_back_per_batch_in_order() -> None:
    seen: list[list[int]] = []

    def many(batches: list[int], tracked: list[str]) -> list[str]:
        seen.append(list(batches))
        return [f"{t}+id" for t in tracked]

    groups, overlapped, got = BatchGroups(frames=3), OverlappedStage(many, depth=1), []
    for batch in range(8):
        group = groups.add([batch], f"t{batch}")
        if group is not None:
            got += ungrouped(overlapped.submit([b[0] for b in group[0]], group[1]))
    rest = groups.flush()
    got += ungrouped(overlapped.submit([b[0] for b in rest[0]], rest[1])) + ungrouped(overlapped.drain())
    overlapped.close()
    assert seen == [[0, 1, 2], [3, 4, 5], [6, 7]]
    assert got == [(b, f"t{b}+id") for b in range(8)]


def test_a_failing_batch_raises_where_it_is_collected() -> None:
    overlapped = OverlappedStage(Recorder(fail_on=2), depth=1)
    results = overlapped.submit(0, "a") + overlapped.submit(1, "b") + overlapped.submit(2, "c")
    with pytest.raises(RuntimeError, match="batch 2"):
        results += overlapped.submit(3, "d")
    assert [b for b, _ in results] == [0, 1]
    assert [b for b, _ in overlapped.drain()] == [3]  # the failed batch is gone; later ones still complete
    overlapped.close()
    with pytest.raises(ValueError, match="depth: expected an int >= 0"):
        OverlappedStage(Recorder(), depth=-1)


@pytest.fixture(scope="module")
def sample_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """The rendered samples (first 120 frames a camera, classical embedder): inline batch by batch
    (``group_frames`` 1), and overlapped in groups of 16 camera frames (the default)."""
    from detectors import detector_from_config
    from reid import load_embedder

    base = load_config(SAMPLES / "cams.yaml")
    cams = tuple(dataclasses.replace(c, max_frames=120) for c in base.cameras)
    outs = {}
    for overlap in (False, True):
        embed = dataclasses.replace(base.embed, overlap=overlap, group_frames=16 if overlap else 1)
        cfg = dataclasses.replace(base, cameras=cams, embed=embed)
        out = tmp_path_factory.mktemp(f"overlap_{overlap}")
        run_pipeline(cfg, out, detector_from_config(cfg.detector), progress=False, embedder=load_embedder("classical"))
        outs[overlap] = out
    return outs


def test_overlap_gives_the_ids_of_the_inline_run(sample_runs: dict[bool, Path]) -> None:
    inline, overlapped = sample_runs[False], sample_runs[True]
    files = sorted(p.relative_to(inline) for p in inline.glob("mot*/*.txt")) + [Path("tracks.csv")]
    assert len(files) == 7
    for rel in files:
        assert (overlapped / rel).read_bytes() == (inline / rel).read_bytes(), rel
    rows = np.loadtxt(inline / "mot_global" / "cam0.txt", delimiter=",", ndmin=2)
    assert len(rows) > 100 and len(set(rows[:, 1])) >= 2  # a real run: many rows, several identities
