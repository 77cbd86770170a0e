"""The static world of the sample scene: a walled courtyard, its props, three pinhole cameras.

World frame: metres, X east (0..20), Y north (0..12), Z up, ground plane Z = 0. The courtyard is enclosed by
3.4 m facades with five doorways; an outer 4.5 m wall 3 m further out closes the corridor behind them, so
people can enter and leave through the doorways without popping into view. Cameras use the OpenCV
convention (x right, y down, z forward); ``depth`` always means camera z.

Backgrounds are ray-cast per pixel (2x supersampled, then area-downsampled), so they are exact and static.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

COURT_W, COURT_H = 20.0, 12.0
WALL_H, WALL_T, OUTER_GAP, OUTER_H = 3.4, 0.3, 3.0, 4.5
LIGHT = np.array([0.45, -0.35, 0.82]) / np.linalg.norm([0.45, -0.35, 0.82])
# Doorways: (wall, centre along the wall, width). Walls: 'W' x=0, 'E' x=20, 'S' y=0, 'N' y=12.
DOORS = (("W", 5.8, 1.8), ("E", 6.2, 1.8), ("N", 4.8, 1.8), ("N", 14.8, 1.8), ("S", 10.0, 1.8))
# Props as axis-aligned boxes (xmin, ymin, zmin, xmax, ymax, zmax) and a material name.
PROPS = (
    ((0.6, 10.6, 0.0, 2.6, 11.4, 0.45), "bench"),
    ((17.4, 10.6, 0.0, 19.4, 11.4, 0.45), "bench"),
    ((8.8, 11.0, 0.0, 9.8, 11.7, 0.7), "planter"),
    ((11.0, 0.3, 0.0, 12.0, 1.0, 0.7), "planter"),
    ((19.2, 2.0, 0.0, 19.7, 2.5, 1.1), "bin"),
    ((6.9, 11.6, 0.0, 7.3, 12.0, 3.4), "pillar"),
    ((12.7, 11.6, 0.0, 13.1, 12.0, 3.4), "pillar"),
    ((0.3, 8.2, 0.0, 1.3, 9.2, 2.3), "kiosk"),
)
# BGR base colours of the materials.
MATERIALS = {
    "W": (150, 178, 196),
    "E": (170, 172, 168),
    "N": (128, 150, 182),
    "S": (160, 166, 150),
    "outer": (170, 178, 186),
    "bench": (40, 80, 120),
    "planter": (90, 96, 104),
    "bin": (60, 110, 60),
    "pillar": (140, 140, 136),
    "kiosk": (150, 90, 50),
}
CAMERA_SPECS = (
    # id, centre (m), look-at point (m), horizontal field of view (deg), gain BGR, bias
    ("cam0", (0.6, 0.6, 3.6), (5.0, 8.0, 0.0), 62.0, (1.00, 1.00, 1.02), 0.0),
    ("cam1", (19.4, 0.7, 3.3), (15.5, 7.5, 0.0), 62.0, (1.05, 1.00, 0.95), 6.0),
    ("cam2", (10.0, 11.6, 3.9), (10.0, 3.5, 0.0), 66.0, (0.92, 0.95, 0.98), -8.0),
)


@dataclass(frozen=True)
class Camera:
    """A static pinhole camera. ``rotation`` maps world to camera axes (rows: right, down, forward)."""

    id: str
    centre: np.ndarray  # (3,) float64 metres
    rotation: np.ndarray  # (3, 3) float64
    focal: float  # pixels
    size: tuple[int, int]  # (width, height)
    gain: np.ndarray  # (3,) float32 BGR multipliers (illumination difference between cameras)
    bias: float

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N, 3) -> pixel coordinates (N, 2) float64 and depths (N,) float64."""
        cam = (points - self.centre) @ self.rotation.T
        depth = cam[:, 2]
        w, h = self.size
        safe = np.where(depth > 1e-6, depth, 1e-6)
        uv = np.stack([self.focal * cam[:, 0] / safe + w / 2, self.focal * cam[:, 1] / safe + h / 2], axis=1)
        return uv, depth

    def rays(self, scale: int = 1) -> np.ndarray:
        """World directions (H*s, W*s, 3) through pixel centres, scaled so camera z of each is 1."""
        w, h = self.size
        u = (np.arange(w * scale) + 0.5) / scale - w / 2
        v = (np.arange(h * scale) + 0.5) / scale - h / 2
        uu, vv = np.meshgrid(u / self.focal, v / self.focal)
        cam = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
        return cam @ self.rotation


def make_camera(spec: tuple, size: tuple[int, int]) -> Camera:
    """Build a :class:`Camera` from one ``CAMERA_SPECS`` row for an image ``size`` (width, height)."""
    cam_id, centre, target, hfov, gain, bias = spec
    centre = np.asarray(centre, float)
    forward = np.asarray(target, float) - centre
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    focal = size[0] / 2 / np.tan(np.radians(hfov) / 2)
    rotation = np.stack([right, down, forward])
    return Camera(cam_id, centre, rotation, float(focal), size, np.asarray(gain, np.float32), float(bias))


def wall_boxes() -> list[tuple[tuple[float, ...], str]]:
    """Facade segments around the courtyard (doorways left open) and the outer corridor walls."""
    boxes: list[tuple[tuple[float, ...], str]] = []
    t, o = WALL_T, OUTER_GAP
    spans = {"W": (-t, COURT_H + t), "E": (-t, COURT_H + t), "S": (-t, COURT_W + t), "N": (-t, COURT_W + t)}
    for wall, (lo, hi) in spans.items():
        cuts = sorted((c - w / 2, c + w / 2) for name, c, w in DOORS if name == wall)
        edges = [lo] + [v for cut in cuts for v in cut] + [hi]
        for a, b in zip(edges[::2], edges[1::2]):
            boxes.append((_wall_box(wall, a, b, 0.0, t, WALL_H), wall))
        boxes.append((_wall_box(wall, -o - t, spans[wall][1] + o, o + t, 0.5, OUTER_H), "outer"))
    return boxes


def _wall_box(wall: str, a: float, b: float, offset: float, thick: float, height: float) -> tuple[float, ...]:
    if wall == "W":
        return (-offset - thick, a, 0.0, -offset, b, height)
    if wall == "E":
        return (COURT_W + offset, a, 0.0, COURT_W + offset + thick, b, height)
    if wall == "S":
        return (a, -offset - thick, 0.0, b, -offset, height)
    return (a, COURT_H + offset, 0.0, b, COURT_H + offset + thick, height)


def _ray_boxes(origin: np.ndarray, dirs: np.ndarray, boxes: list) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest box hit per ray: t (P,) (inf when none), box index (P,) (-1), face axis (P,) 0/1/2."""
    best_t = np.full(len(dirs), np.inf)
    best_box = np.full(len(dirs), -1)
    best_axis = np.zeros(len(dirs), int)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / dirs
        for k, (box, _) in enumerate(boxes):
            lo, hi = np.asarray(box[:3]), np.asarray(box[3:])
            t1, t2 = (lo - origin) * inv, (hi - origin) * inv
            near, far = np.fmin(t1, t2), np.fmax(t1, t2)
            t_near, t_far = near.max(axis=1), far.min(axis=1)
            hit = (t_near <= t_far) & (t_near > 0) & (t_near < best_t)
            best_t[hit], best_box[hit] = t_near[hit], k
            best_axis[hit] = near[hit].argmax(axis=1)
    return best_t, best_box, best_axis


def _ground_colour(xy: np.ndarray, tiles: np.ndarray) -> np.ndarray:
    """BGR float colours (P, 3) of ground points (P, 2): paving, markings, grass, corridor asphalt."""
    x, y = xy[:, 0], xy[:, 1]
    inside = (x >= 0) & (x <= COURT_W) & (y >= 0) & (y <= COURT_H)
    ti = np.clip((x / 0.5).astype(int), 0, tiles.shape[1] - 1)
    tj = np.clip((y / 0.5).astype(int), 0, tiles.shape[0] - 1)
    colour = np.array([150.0, 156.0, 160.0]) * tiles[tj, ti][:, None]
    grout = (np.abs((x + 0.25) % 0.5 - 0.25) < 0.018) | (np.abs((y + 0.25) % 0.5 - 0.25) < 0.018)
    colour[grout] *= 0.8
    yellow = (np.abs(np.abs(x - 10.0) - 7.5) < 0.06) & (np.abs(y - 6.0) < 4.5)
    yellow |= (np.abs(np.abs(y - 6.0) - 4.5) < 0.06) & (np.abs(x - 10.0) < 7.5)
    colour[yellow] = (40, 190, 215)
    zebra = (np.abs(y - 1.7) < 1.2) & (np.abs(x - 10.0) < 1.4) & ((x * 2.5).astype(int) % 2 == 0)
    colour[zebra] = (225, 228, 228)
    circle = np.hypot(x - 6.0, y - 2.2) < 0.35
    colour[circle] = (70, 72, 74)
    grass = ((x > 16.8) & (y > 8.6)) | ((x < 3.4) & (y < 2.6))
    colour[grass] = np.array([60.0, 125.0, 80.0]) * tiles[tj, ti][grass, None] ** 2
    colour[~inside] = np.array([118.0, 132.0, 146.0]) * (0.9 + 0.1 * tiles[tj, ti][~inside, None])
    return colour


def _box_colour(points: np.ndarray, materials: list[str]) -> np.ndarray:
    """BGR float colours (P, 3) of wall/prop points (P, 3); facades get windows and a plinth."""
    colour = np.array([MATERIALS[m] for m in materials], float)
    z = points[:, 2]
    is_facade = np.isin(materials, list("WESN"))
    along = np.where(np.isin(materials, ["W", "E"]), points[:, 1], points[:, 0])
    window = is_facade & (z > 1.2) & (z < 2.5) & ((along + 0.6) % 2.6 < 1.3)
    colour[window] = (92, 70, 58)
    frame = is_facade & (np.abs(z - 1.85) < 0.04) & window
    colour[frame] = (200, 200, 200)
    colour[is_facade & (z < 0.3)] *= 0.7
    colour[(np.asarray(materials) == "planter") & (z > 0.62)] = (40, 110, 50)
    colour[(np.asarray(materials) == "kiosk") & (z > 1.0) & (z < 1.8)] = (190, 190, 180)
    return colour


def render_background(cam: Camera, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Static view of ``cam``: image (H, W, 3) uint8 BGR and occluder depth (H, W) float32.

    The occluder depth is the camera z of the nearest wall or prop per pixel and inf where the ray hits
    ground or sky (the ground never hides a person standing on it).
    """
    boxes = wall_boxes() + list(PROPS)
    tiles = 0.88 + 0.12 * rng.random((int(COURT_H / 0.5) + 1, int(COURT_W / 0.5) + 1))
    w, h = cam.size
    scale = 2
    dirs = cam.rays(scale).reshape(-1, 3)
    t_box, box_idx, axis = _ray_boxes(cam.centre, dirs, boxes)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(dirs[:, 2] < 0, -cam.centre[2] / dirs[:, 2], np.inf)
    colour = np.tile(np.array([215.0, 200.0, 185.0]), (len(dirs), 1))  # sky
    ground = t_ground < t_box
    pts = cam.centre + dirs[ground] * t_ground[ground, None]
    colour[ground] = _ground_colour(pts[:, :2], tiles)
    on_box = ~ground & np.isfinite(t_box)
    pts = cam.centre + dirs[on_box] * t_box[on_box, None]
    colour[on_box] = _box_colour(pts, [boxes[k][1] for k in box_idx[on_box]])
    normal_sign = -np.sign(dirs[on_box][np.arange(on_box.sum()), axis[on_box]])
    shade = 0.6 + 0.4 * np.clip(normal_sign * LIGHT[axis[on_box]], 0, 1)
    colour[on_box] *= shade[:, None]
    image = colour.reshape(h * scale, w * scale, 3).astype(np.float32)
    image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    image = np.clip(image + rng.normal(0, 2.5, image.shape), 0, 255).astype(np.uint8)
    dirs1 = cam.rays(1).reshape(-1, 3)
    t_box1, _, _ = _ray_boxes(cam.centre, dirs1, boxes)
    depth = t_box1.reshape(h, w).astype(np.float32)  # rays have camera z = 1, so t is depth
    return image, depth
