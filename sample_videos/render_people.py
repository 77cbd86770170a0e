"""Articulated walking people of the sample scene: paths, walk-cycle poses, and their drawing per camera.

A person is a set of capsules (segment p0-p1 with radii r0, r1 metres) in world coordinates: legs (thigh,
shin, foot), pelvis, torso, neck, head with hair or a hat, arms (upper, fore, hand) and an optional backpack.
Each camera draws them as filled, shaded polygons (OpenCV, sub-pixel) far-to-near (painter's algorithm).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from render_world import Camera

SHIFT = 4  # sub-pixel bits for OpenCV drawing
MAX_WAYPOINTS = 8
UP = np.array([0.0, 0.0, 1.0])
SKINS = ((140, 170, 220), (105, 140, 190), (75, 105, 150), (60, 80, 120))
HAIRS = ((30, 30, 35), (40, 60, 95), (100, 170, 210), (150, 150, 150))
SHOES = ((38, 38, 40), (215, 215, 215), (40, 60, 90))
# (shirt BGR, trousers BGR, accessory, accessory BGR); persons 1/5, 2/6 and 3/7 share trouser colours.
OUTFITS = (
    ((40, 40, 200), (115, 62, 40), None, None),
    ((40, 200, 230), (35, 35, 38), None, None),
    ((60, 150, 50), (120, 170, 195), None, None),
    ((195, 115, 40), (70, 82, 50), "hat", (40, 40, 40)),
    ((225, 225, 225), (115, 62, 40), None, None),
    ((30, 120, 235), (35, 35, 38), "hat", (190, 190, 60)),
    ((140, 50, 120), (120, 170, 195), "backpack", (50, 50, 50)),
    ((160, 160, 40), (40, 70, 110), "backpack", (40, 40, 170)),
)
# Waypoints (metres), start time (s). First and last points lie in the corridor outside a doorway. Routes and
# start times were tuned offline so that people are mostly apart in every view, pass in front of each other
# only briefly and partially, each walks through at least two cameras' views, and every view is occupied at
# the last frame.
ROUTES = (
    (((4.8, 13.8), (4.8, 10.5), (7.0, 6.0), (1.5, 5.8), (-1.8, 5.8)), 12.0),
    (((4.8, 13.8), (4.8, 10.5), (7.0, 6.0), (10.0, 1.5), (10.0, -1.8)), 2.1),
    (((10.0, -1.8), (10.0, 1.5), (14.5, 8.0), (14.8, 10.5), (14.8, 13.8)), 4.9),
    (((14.8, 13.8), (14.8, 10.5), (14.5, 8.0), (18.5, 6.2), (21.8, 6.2)), 5.1),
    (((21.8, 6.2), (18.5, 6.2), (14.0, 4.0), (10.0, 1.5), (10.0, -1.8)), 19.0),
    (((21.8, 6.2), (18.5, 6.2), (5.0, 4.0), (4.0, 7.0), (10.0, 1.5), (10.0, -1.8)), 12.0),
    (((4.8, 13.8), (4.8, 10.5), (5.0, 4.0), (10.0, 1.5), (10.0, -1.8)), 4.2),
    (((4.8, 13.8), (4.8, 10.5), (4.0, 7.0), (10.0, 1.5), (10.0, -1.8)), 7.1),
)


@dataclass(frozen=True)
class Person:
    """One walker: a smooth path (dense polyline) walked at constant speed from ``start`` seconds."""

    pid: int
    path: np.ndarray  # (K, 2) float64 metres
    arc: np.ndarray  # (K,) cumulative length, metres
    start: float
    speed: float  # m/s
    scale: float  # body height / 1.75 m
    phase: float  # gait phase offset, radians
    colours: dict[str, np.ndarray]  # part name -> (3,) float BGR
    accessory: str | None

    def place(self, t: float) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Ground position (2,), unit heading (2,) and walked distance at time ``t``; None when absent."""
        s = (t - self.start) * self.speed
        if s < 0 or s > self.arc[-1]:
            return None
        pos = np.array([np.interp(s, self.arc, self.path[:, i]) for i in range(2)])
        ahead = np.array([np.interp(min(s + 0.3, self.arc[-1]), self.arc, self.path[:, i]) for i in range(2)])
        behind = np.array([np.interp(max(s - 0.3, 0.0), self.arc, self.path[:, i]) for i in range(2)])
        heading = ahead - behind
        return pos, heading / np.linalg.norm(heading), s


def _smooth(points: np.ndarray, iterations: int = 4) -> np.ndarray:
    """Chaikin corner cutting of a polyline (K, 2), keeping its end points."""
    for _ in range(iterations):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        inner = np.stack([q, r], axis=1).reshape(-1, 2)[1:-1]
        points = np.vstack([points[:1], inner, points[-1:]])
    return points


def make_people(rng: np.random.Generator) -> list[Person]:
    """The scene's walkers with seed-dependent jitter of paths, timing, size, gait and colours."""
    people = []
    for k, ((waypoints, start), outfit) in enumerate(zip(ROUTES, OUTFITS)):
        pts = np.array(waypoints, float)
        nudge = rng.uniform(-0.3, 0.3, (MAX_WAYPOINTS, 2))  # fixed-size draw: the stream never depends on routes
        pts[1:-1] += nudge[: len(pts) - 2]
        path = _smooth(pts)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
        shirt, trousers, accessory, acc_colour = outfit

        def jitter(colour: tuple) -> np.ndarray:
            return np.clip(np.array(colour, float) + rng.uniform(-10, 10, 3), 0, 255)

        colours = {
            "shirt": jitter(shirt),
            "trousers": jitter(trousers),
            "skin": jitter(SKINS[k % len(SKINS)]),
            "hair": jitter(HAIRS[(3 * k + 1) % len(HAIRS)]),
            "shoes": jitter(SHOES[k % len(SHOES)]),
            "accessory": jitter(acc_colour if acc_colour is not None else (0, 0, 0)),
        }
        people.append(
            Person(
                pid=k + 1,
                path=path,
                arc=arc,
                start=start + rng.uniform(-0.3, 0.3),
                speed=rng.uniform(1.25, 1.4),
                scale=rng.uniform(0.93, 1.07),
                phase=rng.uniform(0, 2 * np.pi),
                colours=colours,
                accessory=accessory,
            )
        )
    return people


def pose(person: Person, t: float) -> dict[str, np.ndarray] | None:
    """Capsules of ``person`` at time ``t`` (None when absent).

    Returns arrays: ``p0``, ``p1`` (M, 3) metres; ``r0``, ``r1`` front radii (M,); ``side`` (M,) radius
    factor seen from the side (torso is flatter than wide); ``colour`` (M, 3) BGR float; ``heading`` (3,).
    """
    placed = person.place(t)
    if placed is None:
        return None
    pos, heading, walked = placed
    fwd, lat = np.array([*heading, 0.0]), np.array([-heading[1], heading[0], 0.0])
    base, k = np.array([*pos, 0.0]), person.scale
    phi = 2 * np.pi * walked / (1.45 * k) + person.phase  # one stride (two steps) per 1.45 m
    hip_z = k * (0.90 + 0.015 * np.cos(2 * phi))
    c = person.colours
    parts = _limbs(base, fwd, lat, k, phi, hip_z, c)
    pelvis = base + hip_z * UP
    parts.append((pelvis + 0.08 * k * lat, pelvis - 0.08 * k * lat, 0.1, 0.1, 1.0, c["trousers"]))
    parts.append((pelvis + 0.06 * k * UP, base + 1.36 * k * UP, 0.16, 0.19, 0.62, c["shirt"]))
    parts.append((base + 1.38 * k * UP, base + 1.52 * k * UP, 0.05, 0.05, 1.0, c["skin"]))
    parts += _head(base + 1.63 * k * UP, fwd, k, c, person.accessory)
    if person.accessory == "backpack":
        back = base - 0.17 * k * fwd
        parts.append((back + 1.0 * k * UP, back + 1.32 * k * UP, 0.14, 0.14, 0.6, c["accessory"]))
    p0, p1, r0, r1, side, colour = (np.array(v, float) for v in zip(*parts))
    return {"p0": p0, "p1": p1, "r0": r0 * k, "r1": r1 * k, "side": side, "colour": colour, "heading": fwd}


def _limbs(base, fwd, lat, k: float, phi: float, hip_z: float, c: dict) -> list[tuple]:
    """Legs (thigh, shin, shoe) and arms (upper, fore, hand) at gait phase ``phi``; arms swing against legs."""

    def direction(angle: float) -> np.ndarray:  # down, rotated forward by ``angle`` radians
        return -np.cos(angle) * UP + np.sin(angle) * fwd

    parts: list[tuple] = []
    for side_sign, psi in ((1.0, phi), (-1.0, phi + np.pi)):
        hip = base + hip_z * UP + side_sign * 0.09 * k * lat
        thigh = 0.42 * np.sin(psi)
        knee = hip + 0.43 * k * direction(thigh)
        ankle = knee + 0.42 * k * direction(thigh - 0.9 * max(0.0, np.cos(psi)) ** 2 - 0.05)
        toe = ankle + 0.17 * k * fwd - 0.03 * k * UP
        shoulder = base + k * 1.40 * UP + side_sign * 0.2 * k * lat
        swing = -0.35 * np.sin(psi)
        elbow = shoulder + 0.29 * k * direction(swing) + 0.02 * k * side_sign * lat
        wrist = elbow + 0.26 * k * direction(swing + 0.35)
        hand = wrist + 0.05 * k * direction(swing + 0.35)
        parts += [
            (hip, knee, 0.075, 0.06, 1.0, c["trousers"]),
            (knee, ankle, 0.058, 0.045, 1.0, c["trousers"]),
            (ankle, toe, 0.045, 0.04, 1.0, c["shoes"]),
            (shoulder, elbow, 0.055, 0.048, 1.0, c["shirt"]),
            (elbow, wrist, 0.045, 0.04, 1.0, c["shirt"]),
            (hand, hand, 0.045, 0.045, 1.0, c["skin"]),
        ]
    return parts


def _head(head, fwd, k: float, c: dict, accessory: str | None) -> list[tuple]:
    """Face and hair (or cap) as offset spheres: depth sorting then shows the face from the front only."""
    parts = [(head + 0.035 * fwd, head + 0.035 * fwd, 0.1, 0.1, 1.0, c["skin"])]
    if accessory == "hat":
        crown = head + 0.05 * k * UP - 0.01 * fwd
        parts.append((crown, crown, 0.108, 0.108, 1.0, c["accessory"]))
        parts.append((crown + 0.06 * fwd, crown + 0.16 * k * fwd, 0.03, 0.03, 1.0, c["accessory"]))
    else:
        hair = head + 0.025 * k * UP - 0.015 * fwd
        parts.append((hair, hair, 0.103, 0.103, 1.0, c["hair"]))
    return parts


def draw_person(parts: dict[str, np.ndarray], cam: Camera) -> tuple[np.ndarray, np.ndarray, int, int, float] | None:
    """Draw one posed person for ``cam`` on its own canvas.

    Returns (colour canvas (h, w, 3) uint8, mask (h, w) bool, x0, y0 image offset of the canvas, depth of the
    body centre), or None when the figure is behind the camera or entirely outside the image.
    """
    m = len(parts["p0"])
    uv, depth = cam.project(np.vstack([parts["p0"], parts["p1"]]))
    if depth.min() < 0.5:
        return None
    to_person = parts["p0"].mean(axis=0) - cam.centre
    facing = abs(float(np.dot(to_person[:2] / max(np.linalg.norm(to_person[:2]), 1e-6), parts["heading"][:2])))
    squash = np.sqrt(facing**2 + (parts["side"] * np.sqrt(max(0.0, 1 - facing**2))) ** 2)
    radius = np.concatenate([parts["r0"] * squash, parts["r1"] * squash]) * cam.focal / depth
    x0, y0 = np.floor((uv - radius[:, None]).min(axis=0)).astype(int) - 1
    x1, y1 = np.ceil((uv + radius[:, None]).max(axis=0)).astype(int) + 2
    w, h = cam.size
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        return None
    canvas = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    fixed = np.round((uv - [x0, y0]) * (1 << SHIFT)).astype(np.int64)
    rad_fixed = np.maximum(np.round(radius * (1 << SHIFT)).astype(np.int64), 1 << (SHIFT - 1))
    mid_depth = 0.5 * (depth[:m] + depth[m:])
    far, near = mid_depth.max(), mid_depth.min()
    for i in np.argsort(-mid_depth, kind="stable"):
        shade = 1.0 - 0.22 * (mid_depth[i] - near) / max(far - near, 1e-6)
        ends = (fixed[i], fixed[m + i])
        radii = (rad_fixed[i], rad_fixed[m + i])
        _capsule(mask, ends, radii, 255)
        _capsule(canvas, ends, radii, tuple(float(v) for v in parts["colour"][i] * 0.78 * shade))
        # A narrower, lighter core offset towards the light (upper left) reads as a rounded limb.
        offset = np.round(np.array([-0.25, -0.15]) * np.array(radii).mean()).astype(np.int64)
        core = tuple(np.maximum((np.array(radii) * 0.6).astype(np.int64), 1))
        _capsule(
            canvas,
            (ends[0] + offset, ends[1] + offset),
            core,
            tuple(float(v) for v in np.minimum(parts["colour"][i] * 1.02 * shade, 255)),
        )
    canvas[mask == 0] = 0
    centre_depth = float(cam.project((parts["p0"].mean(axis=0))[None])[1][0])
    return canvas, mask > 0, int(x0), int(y0), centre_depth


def _capsule(img: np.ndarray, ends: tuple, radii: tuple, colour) -> None:
    """Fill a tapered capsule: two end discs and the quad joining their outer tangents (fixed point)."""
    (a, b), (ra, rb) = ends, radii
    for p, r in ((a, ra), (b, rb)):
        cv2.circle(img, (int(p[0]), int(p[1])), int(r), colour, -1, cv2.LINE_8, SHIFT)
    d = (b - a).astype(float)
    length = np.hypot(*d)
    if length < 1:
        return
    n = np.array([-d[1], d[0]]) / length
    quad = np.array([a + n * ra, b + n * rb, b - n * rb, a - n * ra]).round().astype(np.int32)
    cv2.fillConvexPoly(img, quad, colour, cv2.LINE_8, SHIFT)
