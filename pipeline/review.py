"""The review page of a run: ``identities/index.html`` and one titled contact sheet per identity.

The page holds, top to bottom:

- run information (folder, cameras and frames, ReID model, linking, counts);
- a timeline: one row per identity (and one for the unlinked tracklets), one bar per tracklet from its first
  to its last box, coloured by camera: who was where, when;
- one section per identity: its title (``G<id>``, cameras, time range, track ids per camera), its contact
  sheet (a row of crops per camera, the same title drawn on the PNG) and links that open each camera's
  video at the identity's first appearance there (``../videos/<camera>.mp4#t=<seconds>``);
- the unlinked tracklets (tracks that never got a global id), each with its crops.

Everything is static: no script, no external file; it opens from disk in any browser.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from pipeline.durable import atomic_path, write_text
from pipeline.identity.tracklets import Tracklet

MAX_THUMBS_PER_CAMERA = 8
THUMB_W, THUMB_H = 64, 128
LABEL_W = 90
TITLE_H = 24
TIMELINE_W = 900
ROW_H = 20
CAMERA_COLOURS = sv.ColorPalette.DEFAULT


def identity_title(gid: int, members: list[Tracklet]) -> str:
    """``G5 | cam0, cam1 | 1.2-24.0 s | cam0#3 cam1#7`` (a track cut into several tracklets is named once)."""
    cams = sorted({t.camera_id for t in members})
    first = min(t.first_timestamp for t in members)
    last = max(t.last_timestamp for t in members)
    names = [f"{t.camera_id}#{t.track_id}" for t in sorted(members, key=lambda t: t.first_timestamp)]
    tracks = " ".join(dict.fromkeys(names))
    return f"G{gid} | {', '.join(cams)} | {first:.1f}-{last:.1f} s | {tracks}"


def contact_sheet(title: str, crops_by_camera: Mapping[str, list[np.ndarray]]) -> np.ndarray:
    """A BGR image: a title strip, then one row per camera (its name, then up to 8 crops)."""
    ncols = max(1, min(MAX_THUMBS_PER_CAMERA, max((len(v) for v in crops_by_camera.values()), default=1)))
    rows = max(1, len(crops_by_camera))
    sheet = np.full((TITLE_H + THUMB_H * rows, LABEL_W + THUMB_W * ncols, 3), 255, np.uint8)
    sheet[:TITLE_H] = 40
    cv2.putText(sheet, title[:110], (4, TITLE_H - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (255, 255, 255), 1, cv2.LINE_AA)
    for r, (cam, images) in enumerate(sorted(crops_by_camera.items())):
        top = TITLE_H + r * THUMB_H
        cv2.putText(sheet, cam[:12], (4, top + THUMB_H // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        for c, img in enumerate(images[:ncols]):
            sheet[top : top + THUMB_H, LABEL_W + c * THUMB_W : LABEL_W + (c + 1) * THUMB_W] = img
    return sheet


def write_review(
    out_dir: Path,
    tracklets: list[Tracklet],
    mapping: dict[int, int],
    thumbs: dict[tuple[str, int], list[np.ndarray]],
    records: list[dict],
    run_info: Mapping[str, Any] | None = None,
) -> Path:
    """Contact sheets (``identities/<gid>.png``, ``identities/unlinked_<tracklet>.png``) and
    ``identities/index.html`` (module docstring). Returns the page's path."""
    out_dir = Path(out_dir)
    sheet_dir = out_dir / "identities"
    sheet_dir.mkdir(parents=True, exist_ok=True)
    groups: dict[int, list[Tracklet]] = defaultdict(list)
    unlinked: list[Tracklet] = []
    for t in tracklets:
        gid = mapping.get(t.tracklet_id, -1)
        (groups[gid] if gid >= 0 else unlinked).append(t)
    info = dict(run_info or {})
    videos = bool(info.pop("videos", False)) or (out_dir / "videos").is_dir()
    cameras = sorted({t.camera_id for t in tracklets})
    sections = []
    for rec in records:
        gid = rec["global_id"]
        members = groups.get(gid, [])
        if not members:
            continue
        crops: dict[str, list[np.ndarray]] = defaultdict(list)
        for t in members:
            crops[t.camera_id].extend(thumbs.get((t.camera_id, t.track_id), []))
        title = identity_title(gid, members)
        _write_png(sheet_dir / f"{gid}.png", contact_sheet(title, crops))
        sections.append(_identity_section(gid, title, members, videos))
    unlinked_rows = []
    for t in sorted(unlinked, key=lambda t: (t.camera_id, t.first_timestamp)):
        crops_of = thumbs.get((t.camera_id, t.track_id), [])
        name = f"unlinked_{t.tracklet_id}.png"
        if crops_of:
            _write_png(sheet_dir / name, contact_sheet(f"{t.camera_id}#{t.track_id}", {t.camera_id: crops_of}))
        unlinked_rows.append(_unlinked_row(t, name if crops_of else None, videos))
    page = _page(info, records, groups, unlinked, cameras, sections, unlinked_rows)
    index = sheet_dir / "index.html"
    write_text(index, page)
    return index


def _write_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"cannot write {path}")


def _video_link(camera: str, seconds: float, videos: bool) -> str:
    label = f"{html.escape(camera)} at {seconds:.1f} s"
    if not videos:
        return label
    return f"<a href='../videos/{html.escape(camera)}.mp4#t={max(0.0, seconds):.2f}'>{label}</a>"


def _identity_section(gid: int, title: str, members: list[Tracklet], videos: bool) -> str:
    firsts: dict[str, float] = {}
    for t in members:
        firsts[t.camera_id] = min(firsts.get(t.camera_id, np.inf), t.first_timestamp)
    links = ", ".join(_video_link(cam, firsts[cam], videos) for cam in sorted(firsts, key=firsts.get))
    swatch = CAMERA_COLOURS.by_idx(gid).as_hex()
    return (
        f"<section id='g{gid}'><h3><span class='sw' style='background:{swatch}'></span>{html.escape(title)}</h3>"
        f"<p>first seen: {links}</p><img src='{gid}.png' alt='{html.escape(title)}'></section>"
    )


def _unlinked_row(t: Tracklet, image: str | None, videos: bool) -> str:
    img = f"<img src='{image}' alt='{t.camera_id}#{t.track_id}'>" if image else "no crops"
    return (
        f"<tr><td>{html.escape(t.camera_id)}#{t.track_id}</td><td>{t.first_timestamp:.1f}-{t.last_timestamp:.1f}</td>"
        f"<td>{t.n_boxes}</td><td>{_video_link(t.camera_id, t.first_timestamp, videos)}</td><td>{img}</td></tr>"
    )


def _timeline(
    records: list[dict], groups: Mapping[int, list[Tracklet]], unlinked: list[Tracklet], cameras: list[str]
) -> str:
    """An SVG: a row per identity (plus one for unlinked tracklets), a bar per tracklet coloured by camera."""
    rows = [(f"G{r['global_id']}", f"#g{r['global_id']}", groups.get(r["global_id"], [])) for r in records]
    if unlinked:
        rows.append(("unlinked", "#unlinked", unlinked))
    spans = [t.last_timestamp for _, _, members in rows for t in members]
    end = max(spans, default=0.0) or 1.0
    label_w, plot_w = 70, TIMELINE_W - 110
    colour = {cam: CAMERA_COLOURS.by_idx(i).as_hex() for i, cam in enumerate(cameras)}
    lane = {cam: i for i, cam in enumerate(cameras)}  # each camera its own lane inside a row: overlaps stay visible
    lane_h = (ROW_H - 4) / max(1, len(cameras))
    height = ROW_H * len(rows) + 24
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{TIMELINE_W}' height='{height}' class='timeline'>"]
    for k, (label, anchor, members) in enumerate(rows):
        y = k * ROW_H
        parts.append(f"<a href='{anchor}'><text x='0' y='{y + 13}'>{html.escape(label)}</text></a>")
        for t in members:
            x = label_w + plot_w * t.first_timestamp / end
            w = max(1.5, plot_w * (t.last_timestamp - t.first_timestamp) / end)
            tip = f"{t.camera_id}#{t.track_id} {t.first_timestamp:.1f}-{t.last_timestamp:.1f} s"
            parts.append(
                f"<rect x='{x:.1f}' y='{y + 2 + lane[t.camera_id] * lane_h:.1f}' width='{w:.1f}' "
                f"height='{max(1.0, lane_h - 0.5):.1f}' fill='{colour[t.camera_id]}'>"
                f"<title>{html.escape(tip)}</title></rect>"
            )
    axis_y = ROW_H * len(rows) + 14
    for frac in np.linspace(0.0, 1.0, 6):
        x = label_w + plot_w * frac
        parts.append(f"<text x='{x:.0f}' y='{axis_y}' class='tick' text-anchor='middle'>{end * frac:.0f} s</text>")
    parts.append("</svg>")
    legend = " ".join(f"<span class='sw' style='background:{colour[c]}'></span>{html.escape(c)}" for c in cameras)
    return f"<p class='legend'>cameras: {legend}</p>" + "".join(parts)


def _page(
    info: Mapping[str, Any], records: list[dict], groups: Mapping[int, list[Tracklet]], unlinked: list[Tracklet],
    cameras: list[str], sections: list[str], unlinked_rows: list[str],
) -> str:  # fmt: skip
    multi = sum(len(r["cameras"]) > 1 for r in records)
    facts = {
        **{k: v for k, v in info.items() if v is not None},
        "identities": f"{len(records)} ({multi} seen by more than one camera)",
        "tracklets": f"{sum(len(v) for v in groups.values()) + len(unlinked)} ({len(unlinked)} unlinked)",
    }
    info_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_text(v))}</td></tr>" for k, v in facts.items()
    )
    unlinked_table = (
        "<table><tr><th>track</th><th>time (s)</th><th>boxes</th><th>first seen</th><th>crops</th></tr>"
        + "".join(unlinked_rows)
        + "</table>"
        if unlinked_rows
        else "<p>none: every tracklet with a usable crop got a global id</p>"
    )
    style = (
        "body{font-family:sans-serif;margin:16px;color:#222}th{text-align:left;padding-right:12px}"
        "td{padding:2px 8px;vertical-align:top}section{margin:18px 0;border-top:1px solid #ccc}"
        "h3{margin:8px 0 4px;font-size:15px}.sw{display:inline-block;width:12px;height:12px;margin:0 6px 0 10px}"
        ".timeline text{font-size:11px}.timeline .tick{fill:#666}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>run review: {len(records)} identities</title>"
        f"<style>{style}</style></head><body><h1>Run review</h1><table class='info'>{info_rows}</table>"
        f"<h2>Who was where, when</h2>{_timeline(records, groups, unlinked, cameras)}"
        f"<h2>Identities</h2>{''.join(sections)}"
        f"<h2 id='unlinked'>Unlinked tracklets</h2>{unlinked_table}</body></html>"
    )


def _text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)
