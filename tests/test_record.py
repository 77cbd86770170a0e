"""The identity record: one owner of tracklet id -> global id, and its event stream."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pipeline.identity.outputs import load_tracklets
from pipeline.identity.record import IdentityRecord, IdEvent
from pipeline.identity.tracklets import Tracklet


def test_join_leave_and_lookup() -> None:
    record = IdentityRecord()
    record.join(10, 1)
    record.join(11, 1)
    record.join(12, 2)
    assert record.members(1) == [10, 11] and record.global_ids([12, 11, 99, -1]).tolist() == [2, 1, -1, -1]
    assert record.leave(10) == [11] and record.global_id(10) is None and 10 not in record
    assert record.leave(12) == [] and not record.is_live(2)  # an emptied identity is no longer live
    record.join(11, 3)  # a move leaves the old identity
    assert record.members(1) == [] and record.members(3) == [11] and record.mapping() == {11: 3}
    with pytest.raises(ValueError, match="use leave"):
        record.join(5, -1)


def test_events_are_net_changes_per_publish() -> None:
    record = IdentityRecord()
    record.join(1, 5)
    record.join(2, 5)
    assert record.publish(1.0) == [IdEvent(1, 5, 1.0), IdEvent(2, 5, 1.0)]
    record.leave(2)
    record.join(2, 6)  # left and joined within one step: one event
    record.leave(1)
    record.join(1, 5)  # back where it was: no event
    assert record.publish(2.0) == [IdEvent(2, 6, 2.0)]
    record.leave(2)
    assert record.publish(3.0) == [IdEvent(2, -1, 3.0)]
    assert record.publish(4.0) == []
    events, cursor = record.events_since(1)
    assert [e.tracklet_id for e in events] == [2, 2, 2] and cursor == 4


def test_retire_keeps_the_ids_of_an_expired_identity() -> None:
    record = IdentityRecord()
    record.join(1, 5)
    record.join(2, 5)
    assert record.retire(5) == [1, 2] and not record.is_live(5)
    assert record.global_ids([1, 2]).tolist() == [5, 5] and record.publish(0.0)[0].global_id == 5


def test_replaying_the_events_rebuilds_the_record_and_assign_all_replaces_it() -> None:
    rng = np.random.default_rng(0)
    source = IdentityRecord()
    for step in range(40):
        tid, gid = int(rng.integers(12)), int(rng.integers(-1, 4))
        source.leave(tid) if gid < 0 else source.join(tid, gid)
        source.publish(float(step))
    source.assign_all({0: 7, 1: 7, 2: -1, 30: 8})
    source.publish(99.0)
    copy = IdentityRecord()
    copy.apply(source.events)
    assert copy.mapping() == source.mapping() == {0: 7, 1: 7, 30: 8}
    assert copy.members(7) == [0, 1]


def test_label_fills_snapshots() -> None:
    record = IdentityRecord()
    record.join(3, 9)
    tracklets = [Tracklet(3, "a", 1, 0, 5, 0.0, 0.5), Tracklet(4, "a", 2, 0, 5, 0.0, 0.5)]
    assert [t.global_id for t in record.label(tracklets)] == [9, -1]
    assert [t.global_id for t in tracklets] == [-1, -1]  # copies


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("offline", [False, True])
def test_every_output_agrees_with_the_record(tmp_path: Path, offline: bool) -> None:
    """tracks.csv, crops/manifest.csv, tracklets.npz, identities.csv and identity_events.csv share one tracklet
    id and one final global id per tracklet."""
    from configs import config_from_dict
    from pipeline.engine import run_pipeline
    from tests.test_identity_stage import ColourEmbedder, FixedBoxes, two_people_video

    cams = [
        {"id": "a", "source": str(two_people_video(tmp_path / "a.avi", 30, ("red", "green")))},
        {"id": "b", "source": str(two_people_video(tmp_path / "b.avi", 30, ("green", "red"), tint=40))},
    ]
    cfg = config_from_dict({
        "cameras": cams, "detector": {"backend": "bgsub"},
        "embed": {"weights": "classical", "min_height": 20, "every_k": 1, "slow_after": 0},
        "linking": {"threshold": 0.8, "min_crops": 2, "offline": offline, "offline_threshold": 0.8},
        "outputs": {"crops": True, "crop_every": 3, "crop_min_height": 10},
    })  # fmt: skip
    out = tmp_path / "run"
    summary = run_pipeline(cfg, out, FixedBoxes(), progress=False, embedder=ColourEmbedder())
    tracklets, _ = load_tracklets(out)
    final = {t.tracklet_id: t.global_id for t in tracklets}
    assert len(final) == 4 and sorted(set(final.values())) == [1, 2]
    replay = IdentityRecord()
    events = read_csv(out / "identity_events.csv")
    replay.apply([IdEvent(int(e["tracklet_id"]), int(e["global_id"]), float(e["time"])) for e in events])
    assert replay.mapping() == final and summary["identities"]["events"] == len(events) >= 4
    for name in ("tracks.csv", "crops/manifest.csv"):
        rows = read_csv(out / name)
        assert rows and all(final[int(r["tracklet_id"])] == int(r["global_id"]) for r in rows), name
    identities = read_csv(out / "identities.csv")
    assert sorted(int(r["global_id"]) for r in identities) == [1, 2]
