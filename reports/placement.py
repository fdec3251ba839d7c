"""Labels beside the points of a scatter plot without overprinting: each label takes the nearest
free spot around its point (leaving the axes never; covering another label never; covering a bubble
only when nothing nearer is free), with a thin leader line when it had to move away.

Placement works in display coordinates, so the figure's layout must be final first: ``place_labels``
runs the layout once and then fixes it, so that saving the figure draws exactly what was checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib.text import Annotation, Text
from matplotlib.transforms import Bbox

GAP = 3.0  # points between a bubble's edge and its label
RINGS = (0.0, 10.0, 22.0, 36.0, 52.0, 70.0, 92.0, 118.0, 150.0)  # further distances tried, in points beyond the gap
ANGLES = (90, 270, 0, 180, 45, 135, 315, 225, 60, 120, 300, 240, 30, 150, 330, 210)  # degrees, nearest first


@dataclass
class Point:
    """A labelled point: where it is (data coordinates), how big its marker is, its text."""

    x: float
    y: float
    radius: float  # marker radius in points
    text: str


def place_labels(ax, points: list[Point], *, fontsize: float = 9.0) -> list:
    """Annotate every point on ``ax``; returns the annotations. Fixes the figure's layout."""
    fig = ax.figure
    fig.draw_without_rendering()  # final axes positions first: offsets are measured against them
    fig.set_layout_engine("none")
    renderer = fig.canvas.get_renderer()
    to_px = fig.dpi / 72.0
    area = ax.get_window_extent(renderer).shrunk(0.995, 0.995)
    bubbles = [marker_box(ax, p, to_px) for p in points]
    taken, labels = [], []
    # the most crowded points first: they have the fewest free spots
    for i in sorted(range(len(points)), key=lambda i: -crowding(bubbles, i)):
        labels.append((i, best_spot(ax, points[i], renderer, area=area, taken=taken,
                                    bubbles=[bubbles[i], *bubbles[:i], *bubbles[i + 1:]], fontsize=fontsize,
                                    to_px=to_px)))
        taken.append(text_box(labels[-1][1], renderer))
    return [a for _, a in sorted(labels, key=lambda pair: pair[0])]


def marker_box(ax, p: Point, to_px: float) -> Bbox:
    """The display box a round marker of ``p.radius`` points covers."""
    cx, cy = ax.transData.transform((p.x, p.y))
    r = p.radius * to_px
    return Bbox([[cx - r, cy - r], [cx + r, cy + r]])


def crowding(boxes: list[Bbox], i: int) -> int:
    """How many other markers lie within a few marker widths of marker ``i``."""
    near = boxes[i].expanded(3.0, 3.0)
    return sum(near.overlaps(b) for j, b in enumerate(boxes) if j != i)


def candidates(p: Point):
    """Offsets (points) around ``p``, nearest first, with the alignment that keeps the text outside."""
    for ring in RINGS:
        for angle in ANGLES:
            dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            reach = p.radius + GAP + ring
            ha = "center" if abs(dx) < 0.3 else ("left" if dx > 0 else "right")
            va = "center" if abs(dy) < 0.3 else ("bottom" if dy > 0 else "top")
            yield (reach * dx, reach * dy), ha, va, ring > 0


def best_spot(ax, p: Point, renderer, *, area: Bbox, taken: list[Bbox], bubbles: list[Bbox],
              fontsize: float, to_px: float):
    """The annotation of ``p`` at its first free spot: inside ``area``, clear of ``taken`` labels,
    preferably clear of ``bubbles`` (its own first), its leader line clear of the others (else the
    spot covering the fewest)."""
    probe = Text(0, 0, p.text, fontsize=fontsize, figure=ax.figure)
    cx, cy = ax.transData.transform((p.x, p.y))
    fallback = None
    for offset, ha, va, far in candidates(p):
        probe.set_position((cx + offset[0] * to_px, cy + offset[1] * to_px))
        probe.set_horizontalalignment(ha)
        probe.set_verticalalignment(va)
        box = probe.get_window_extent(renderer).expanded(1.04, 1.1)
        if not inside(box, area) or any(box.overlaps(t) for t in taken):
            continue
        covered = sum(box.overlaps(b) for b in bubbles) + sum(crosses((cx, cy), box, b) for b in bubbles[1:])
        if covered == 0:
            return annotate(ax, p, offset, ha, va, far=far, fontsize=fontsize)
        if fallback is None or covered < fallback[0]:
            fallback = (covered, offset, ha, va, far)
    if fallback is None:  # nowhere free: straight above; the caller's check will say so
        fallback = (0, (0, p.radius + GAP), "center", "bottom", False)
    return annotate(ax, p, *fallback[1:4], far=fallback[4], fontsize=fontsize)


def crosses(centre, box: Bbox, bubble: Bbox) -> bool:
    """Whether the leader line from ``centre`` to the middle of ``box`` passes through ``bubble``."""
    (x0, y0), (x1, y1) = centre, (box.x0 + box.width / 2, box.y0 + box.height / 2)
    bx, by, r = bubble.x0 + bubble.width / 2, bubble.y0 + bubble.height / 2, bubble.width / 2
    length2 = (x1 - x0) ** 2 + (y1 - y0) ** 2
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((bx - x0) * (x1 - x0) + (by - y0) * (y1 - y0)) / length2))
    return math.hypot(x0 + t * (x1 - x0) - bx, y0 + t * (y1 - y0) - by) < r


def inside(box: Bbox, area: Bbox) -> bool:
    return box.x0 >= area.x0 and box.x1 <= area.x1 and box.y0 >= area.y0 and box.y1 <= area.y1


def annotate(ax, p: Point, offset, ha: str, va: str, *, far: bool, fontsize: float):
    """The label at ``offset`` points from its point; a moved one with a leader line to the bubble."""
    arrow = {"arrowstyle": "-", "color": "0.2", "lw": 0.7, "shrinkA": 1, "shrinkB": p.radius} if far else None
    note = ax.annotate(p.text, (p.x, p.y), textcoords="offset points", xytext=offset, ha=ha, va=va,
                       fontsize=fontsize, arrowprops=arrow, annotation_clip=False, zorder=5)
    note.set_in_layout(False)
    return note


def text_box(text: Text, renderer) -> Bbox:
    """Where a text's letters are drawn (an annotation's own extent would include its leader line)."""
    if isinstance(text, Annotation):
        text.update_positions(renderer)  # an annotation finds its text's place only when drawn
    return Text.get_window_extent(text, renderer)


def overlapping_texts(texts: list[Text], renderer) -> list[tuple[str, str]]:
    """Pairs of ``texts`` whose drawn letters overlap: what a reader would see overprinted."""
    boxes = [(t.get_text(), text_box(t, renderer)) for t in texts]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:] if box_a.overlaps(box_b)]
