"""Video writing, annotation, the review page and the console helpers, on inputs with known answers."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import av
import numpy as np
import pytest
import supervision as sv

from configs import CameraConfig
from pipeline import video as video_module
from pipeline.identity.tracklets import Tracklet
from pipeline.records import Frame
from pipeline.render import TrackTable, render_run, source_frames
from pipeline.review import identity_title, write_review
from pipeline.sinks import SourceRecorder
from pipeline.video import FrameAnnotator, VideoEncoder, recording_paths
from reid.console import bars_enabled, end_summary, progress, setup_logging


def frames(n: int, h: int = 64, w: int = 96) -> list[np.ndarray]:
    return [np.full((h, w, 3), 10 * i % 255, np.uint8) for i in range(n)]


def test_encoder_writes_h264_atomically(tmp_path: Path) -> None:
    path = tmp_path / "v" / "a.mp4"
    with VideoEncoder(path, fps=10) as enc:
        for image in frames(12, 63, 95):  # odd sides are cropped to even for 4:2:0
            enc.write(image)
        assert not path.exists()  # nothing at the final name until the file is complete
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264" and (s.width, s.height) == (94, 62)
        assert sum(1 for _ in c.decode(s)) == 12
    assert [p.name for p in path.parent.iterdir()] == ["a.mp4"]


def test_encoder_quantiser_trades_size_for_quality(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 96, 3), np.uint8) for _ in range(6)]  # noise: every bit shows
    sizes = {}
    for qp in (18, 40):
        with VideoEncoder(tmp_path / f"q{qp}.mp4", fps=10, qp=qp) as enc:
            for image in images:
                enc.write(image)
        sizes[qp] = (tmp_path / f"q{qp}.mp4").stat().st_size
    assert sizes[18] > 2 * sizes[40]
    with pytest.raises(ValueError, match=r"qp: expected an H.264 quantiser in \[0, 51\], got 60"):
        VideoEncoder(tmp_path / "bad.mp4", fps=10, qp=60)


def test_encoder_falls_back_to_mp4v_and_says_so(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(video_module, "h264_available", lambda: False)
    with caplog.at_level(logging.WARNING), VideoEncoder(tmp_path / "b.mp4", fps=10) as enc:
        for image in frames(5):
            enc.write(image)
    assert enc.codec == "mp4v" and "browsers may not play it" in caplog.text
    assert (tmp_path / "b.mp4").stat().st_size > 0


def test_interrupted_encoder_leaves_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "c.mp4"
    path.write_bytes(b"previous complete video")
    with pytest.raises(KeyboardInterrupt), VideoEncoder(path, fps=10) as enc:
        enc.write(frames(1)[0])
        raise KeyboardInterrupt
    assert path.read_bytes() == b"previous complete video" and len(list(tmp_path.iterdir())) == 1


def test_annotator_colours_boxes_by_global_id() -> None:
    image = np.zeros((120, 200, 3), np.uint8)
    xyxy = np.array([[20, 30, 60, 110], [120, 30, 160, 110]], np.float32)
    out = FrameAnnotator("camA", fps=10).annotate(image, 7, 65.5, xyxy, np.array([4, 9]), np.array([3, 5]))
    for box, gid in zip(xyxy.astype(int), (3, 5)):
        expected = sv.ColorPalette.DEFAULT.by_idx(gid).as_bgr()
        assert tuple(out[box[3] - 1, (box[0] + box[2]) // 2]) == expected  # the box's bottom edge
    assert out[:8, :8].mean() > 0 and out[:8, :8].mean() < 60  # the dark header strip
    unlinked = FrameAnnotator("camA", fps=10).annotate(image, 7, 1.0, xyxy[:1], np.array([4]), np.array([-1]))
    colour = sv.ColorPalette.DEFAULT.by_idx(video_module.UNLINKED_COLOUR_OFFSET + 4).as_bgr()
    assert tuple(unlinked[109, 40]) == colour


def test_track_table_looks_rows_up_by_frame() -> None:
    values = np.array([[5, 0.5, 1, 1, 0, 0, 1, 1, 1], [2, 0.2, 1, 1, 0, 0, 1, 1, 1], [5, 0.5, 2, -1, 0, 0, 1, 1, 1]])
    table = TrackTable(values)
    assert table.rows(5)[:, 2].tolist() == [1, 2] and len(table.rows(2)) == 1 and len(table.rows(3)) == 0


def test_live_camera_is_drawn_from_its_recording(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    recorder = SourceRecorder(*recording_paths(videos, "live"), fps=10)
    for k, image in enumerate(frames(6)):
        recorder.append(Frame("live", 100 + 3 * k, 0.1 * k, image), sv.Detections.empty())
    recorder.close()
    camera = CameraConfig(id="live", source="rtsp://127.0.0.1:1/none")
    got = list(source_frames(camera, videos, None))
    assert [f.index for f in got] == [100, 103, 106, 109, 112, 115]
    assert [round(f.timestamp, 1) for f in got[:2]] == [0.0, 0.1]
    with pytest.raises(FileNotFoundError, match="no recording"):
        list(source_frames(CameraConfig(id="other", source="rtsp://127.0.0.1:1/x"), videos, None))


def test_render_run_rejects_what_it_cannot_draw(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="summary.json"):
        render_run(tmp_path)


def tracklet(tid: int, cam: str, track: int, t0: float, t1: float) -> Tracklet:
    return Tracklet(tid, cam, track, int(t0 * 10), int(t1 * 10), t0, t1, n_boxes=int((t1 - t0) * 10))


def test_review_page_holds_timeline_titles_unlinked_and_video_links(tmp_path: Path) -> None:
    tracklets = [tracklet(0, "c0", 1, 0.0, 4.0), tracklet(1, "c1", 7, 3.0, 9.5), tracklet(2, "c0", 2, 5.0, 6.0)]
    thumbs = {("c0", 1): [np.zeros((128, 64, 3), np.uint8)] * 2, ("c1", 7): [np.zeros((128, 64, 3), np.uint8)]}
    records = [{"global_id": 4, "cameras": ["c0", "c1"], "first_seen": 0.0, "last_seen": 9.5, "boxes": 105,
                "tracklets": 2}]  # fmt: skip
    index = write_review(tmp_path, tracklets, {0: 4, 1: 4, 2: -1}, thumbs, records, {"videos": True, "x": "y"})
    page = index.read_text()
    assert "G4 | c0, c1 | 0.0-9.5 s | c0#1 c1#7" in page
    assert page.count("<rect") == 3  # one bar per tracklet, the unlinked one included
    assert "../videos/c0.mp4#t=0.00" in page and "../videos/c1.mp4#t=3.00" in page
    assert "c0#2</td><td>5.0-6.0" in page and "<th>x</th><td>y</td>" in page
    assert (tmp_path / "identities" / "4.png").is_file()
    no_videos = write_review(tmp_path / "b", tracklets, {0: 4, 1: 4, 2: -1}, thumbs, records).read_text()
    assert "../videos/" not in no_videos


def test_identity_title_names_a_cut_track_once() -> None:
    pieces = [tracklet(5, "c1", 8, 20.6, 23.0), tracklet(9, "c1", 8, 23.1, 24.9), tracklet(2, "c0", 3, 1.0, 2.0)]
    assert identity_title(8, pieces) == "G8 | c0, c1 | 1.0-24.9 s | c0#3 c1#8"


def test_console_helpers(monkeypatch) -> None:
    stream = io.StringIO()
    setup_logging("INFO", stream=stream)
    logging.getLogger("faiss.loader").info("Loading faiss with AVX512 support.")
    logging.getLogger("pipeline.test").info("kept")
    assert "faiss" not in stream.getvalue() and "kept" in stream.getvalue()
    assert not bars_enabled(True, io.StringIO())
    bar = progress(range(3), file=io.StringIO())
    assert bar.disable
    text = end_summary("run done", ["3 frames", "1 id"], "/out", ["open a", "mcpa b"])
    assert text.splitlines() == ["run done: 3 frames, 1 id", "  output: /out", "  next:   open a", "          mcpa b"]
    setup_logging("WARNING")


def test_training_plot_has_no_empty_panel(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    from reid.trainer.run import _plot

    rows = [
        {"epoch": 1, "loss": 2.0, "clusters": 5, "outliers": 1},
        {"epoch": 2, "loss": 1.5, "clusters": 6, "outliers": 0},
    ]
    _plot(rows, tmp_path / "two.png")
    _plot([{**rows[0], "check": 0.7}], tmp_path / "three.png")
    two, three = mpimg.imread(tmp_path / "two.png"), mpimg.imread(tmp_path / "three.png")
    assert two.shape[1] * 3 == three.shape[1] * 2  # no evaluation or check: two panels, not three
