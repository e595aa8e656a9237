"""Draws a synthetic whole scene block by block: the sea, coast, ships and distractors of `data.synth`, as
functions of scene coordinates, so that any block comes out the same whichever blocks are drawn around it;
and places its ships (at sea, inside the footprint, some across window borders).

The textures are those of `shiptoolkit.data.synth` (swell, ripple and grain on the sea; land with piers
along a coast; whitecaps; clouds over anything, ships included; bright, grey or dark hulls with deck
lines), on coarse random grids that cover the whole scene and are interpolated smoothly: no seams
between blocks, and memory that depends on the block, not on the scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from shiptoolkit.data.synth import AREA_MAX, AREA_MEDIAN, AREA_MIN, AREA_SIGMA, _hull

PAD = 48  # drawn around each block, then cut off: the cloud blur (3 sigma = 36 px) sees its neighbours
CAP_CELL = 768  # whitecaps come and go per Airbus-chip-sized cell, as per image in data.synth
STREAMS = {"sea": 1, "coast": 2, "caps": 3, "clouds": 4, "ships": 5, "grain": 6}


def rng_for(seed: int, stream: str, *more: int) -> np.random.Generator:
    """Independent random streams: the sea is the same whether or not ships are drawn on it."""
    return np.random.default_rng([seed, STREAMS[stream], *(m + 2**20 for m in more)])  # block offsets may be < 0


@dataclass
class Grid:
    """A coarse random grid over the scene, cubic-spline interpolated at any pixel (as data.synth's cubic resize):
    separable, so a block is two small matrix products."""

    values: np.ndarray  # prefiltered spline coefficients
    cell: float

    @classmethod
    def random(cls, rng: np.random.Generator, size: int, cell: float) -> Grid:
        from scipy import ndimage

        cells = int(np.ceil((size + 2 * PAD) / cell)) + 4
        coefficients = ndimage.spline_filter(rng.standard_normal((cells, cells)) / 1.5, order=3)
        return cls(coefficients.astype(np.float32), cell)

    def _weights(self, start: int, count: int) -> tuple[np.ndarray, slice]:
        """(count, k) cubic B-spline weights of pixels start.. on the coefficients in the returned slice."""
        coords = (np.arange(start, start + count, dtype=np.float64) + PAD + 0.5) / self.cell + 1.0
        base = np.floor(coords).astype(np.int64)
        t = (coords - base)[:, None]
        taps = np.hstack([(1 - t) ** 3, 3 * t ** 3 - 6 * t ** 2 + 4, -3 * t ** 3 + 3 * t ** 2 + 3 * t + 1, t ** 3]) / 6
        first = int(base[0]) - 1
        weights = np.zeros((count, int(base[-1]) + 3 - first), np.float32)
        weights[np.arange(count)[:, None], base[:, None] - 1 - first + np.arange(4)] = taps
        return weights, slice(first, first + weights.shape[1])

    def sample(self, r0: int, c0: int, h: int, w: int) -> np.ndarray:
        rows, row_cells = self._weights(r0, h)
        cols, col_cells = self._weights(c0, w)
        return rows @ self.values[row_cells, col_cells] @ cols.T


@dataclass
class DrawnShip:
    """One hull as drawn: its mask and colours in its bounding box (pixel rows/cols of the scene)."""

    polygon: np.ndarray  # (n, 2) int32 (col, row) vertices, as filled
    r0: int
    c0: int
    mask: np.ndarray  # uint8 (h, w)
    colour: np.ndarray  # float32 (h, w, 3)
    length: float  # px
    width: float  # px
    angle: float  # radians, bow direction in the (col, row) frame


@dataclass
class Coast:
    edge: int  # 0 top, 1 bottom, 2 left, 3 right: which scene side is land
    profile: np.ndarray  # land depth (px) at each position along that side
    piers: list[tuple[int, int, int, int]]  # (position, width, from depth, to depth)
    colour: np.ndarray


@dataclass
class Layout:
    """Everything random about a scene except per-pixel grain, decided once (small: grids and ship boxes)."""

    size: int
    seed: int
    base: np.ndarray
    grids: dict[str, Grid]
    amplitudes: dict[str, float]
    coast: Coast | None
    ships: list[DrawnShip] = field(default_factory=list)


def make_layout(size: int, seed: int, coast: bool | None) -> Layout:
    sea = rng_for(seed, "sea")
    base = np.array([sea.uniform(10, 40), sea.uniform(35, 75), sea.uniform(45, 90)], np.float32)
    grids = {"swell": Grid.random(sea, size, 128), "ripple": Grid.random(sea, size, 16),
             "tint": Grid.random(sea, size, 2048)}
    amplitudes = {"swell": sea.uniform(4, 12), "ripple": sea.uniform(2, 6)}
    clouds = rng_for(seed, "clouds")
    grids["cloud"] = Grid.random(clouds, size, 154)
    grids["cloud_extent"] = Grid.random(clouds, size, 1536)
    amplitudes["cloud"] = clouds.uniform(0.5, 0.95)
    land = rng_for(seed, "coast")
    wanted = land.random() < 0.5 if coast is None else coast
    grids["land"] = Grid.random(land, size, 12)
    return Layout(size, seed, base, grids, amplitudes, _coast(land, size) if wanted else None)


def _coast(rng: np.random.Generator, size: int) -> Coast:
    depth = rng.uniform(0.04, 0.12) * size
    knots = np.arange(0, size + 256, 256)
    profile = np.interp(np.arange(size), knots, rng.standard_normal(len(knots)) / 1.5 * depth * 0.6) + depth
    profile = np.clip(profile, 5, size * 0.25)
    piers = []
    for _ in range(int(rng.integers(1, 5) * max(1, size // 768))):  # 1 to 4 piers per chip-length of coast
        at = int(rng.integers(20, size - 20))
        piers.append((at, int(rng.integers(3, 8)), int(profile[at]) - 2, int(profile[at] + rng.uniform(20, 90))))
    colour = np.array([rng.uniform(70, 120), rng.uniform(70, 110), rng.uniform(50, 90)], np.float32)
    return Coast(int(rng.integers(0, 4)), profile, piers, colour)


def depth_along(coast: Coast, size: int, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(depth into the scene from the coast's side, position along that side) of pixels."""
    return {0: (rows, cols), 1: (size - 1 - rows, cols), 2: (cols, rows), 3: (size - 1 - cols, rows)}[coast.edge]


def on_land(layout: Layout, row: float, col: float, margin: float) -> bool:
    if layout.coast is None:
        return False
    depth, along = depth_along(layout.coast, layout.size, np.array(row), np.array(col))
    at = int(np.clip(along, 0, layout.size - 1))
    return bool(depth < layout.coast.profile[at] + 90 + margin)  # clear of the piers too


def draw_ship(rng: np.random.Generator, length: float, width: float, angle: float, cx: float, cy: float,
              image_size: int) -> DrawnShip:
    """A hull's mask and colours as data.synth draws them: tone, noise, and sometimes a darker deck line."""
    import cv2

    polygon = _hull(length, width, angle, cx, cy)
    (c0, r0), (c1, r1) = polygon.min(0) - 1, polygon.max(0) + 2
    mask = np.zeros((r1 - r0, c1 - c0), np.uint8)
    cv2.fillPoly(mask, [polygon - [c0, r0]], 1)
    tone = rng.choice([rng.uniform(170, 245), rng.uniform(90, 140), rng.uniform(15, 40)])
    colour = np.array([tone, tone * rng.uniform(0.9, 1.05), tone * rng.uniform(0.85, 1.05)], np.float32)
    colour = (colour + rng.normal(0, 8, mask.shape + (3,))).astype(np.float32)
    if mask.sum() > 300 and rng.random() < 0.5:
        colour[cv2.erode(mask, np.ones((3, 3), np.uint8), iterations=2).astype(bool)] *= 0.8
    return DrawnShip(polygon, int(r0), int(c0), mask, colour, length, width, angle)


def ship_shape(rng: np.random.Generator, limit: float) -> tuple[float, float]:
    """(length, width) in px from the real data's area distribution, as data.synth draws them."""
    area = float(np.clip(rng.lognormal(np.log(AREA_MEDIAN), AREA_SIGMA), AREA_MIN, AREA_MAX))
    width = max(2.0, np.sqrt(area / (rng.uniform(3, 8) * 0.9)))
    return min(area / (width * 0.9), limit), width


def render_block(layout: Layout, r0: int, c0: int, h: int, w: int, bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixels [r0, r0+h) x [c0, c0+w) as float32 (h, w, bands) in 0..255 before rounding, and the ship mask."""
    pr, pc, ph, pw = r0 - PAD, c0 - PAD, h + 2 * PAD, w + 2 * PAD
    image = _sea(layout, pr, pc, ph, pw)
    land = _land(layout, image, pr, pc, ph, pw)
    ships = _ships(layout, image, pr, pc, ph, pw)
    gray = image.mean(-1)
    nir = np.where(ships, gray * 0.9, np.where(land, gray + 40, gray * 0.3))
    image = np.concatenate([image, nir[..., None]], -1) if bands > 3 else image
    image += _caps(layout, pr, pc, ph, pw)[..., None] * 150
    cover = _clouds(layout, pr, pc, ph, pw)[..., None]
    image = image * (1 - cover) + 235 * cover
    if bands > 4:  # further bands: mixtures of red and near infrared (a red edge, ...)
        k = np.linspace(0.2, 0.8, bands - 4, dtype=np.float32)
        image = np.concatenate([image, image[..., :1] * (1 - k) + image[..., 3:4] * k], -1)
    cut = (slice(PAD, PAD + h), slice(PAD, PAD + w))
    return image[cut], ships[cut]


def _sea(layout: Layout, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    g, a = layout.grids, layout.amplitudes
    swell = g["swell"].sample(r0, c0, h, w) * a["swell"] + g["tint"].sample(r0, c0, h, w) * 6
    ripple = g["ripple"].sample(r0, c0, h, w) * a["ripple"]
    grain = rng_for(layout.seed, "grain", r0, c0).normal(0, 2.5, (h, w)).astype(np.float32)
    return layout.base + (swell + ripple + grain)[..., None]


def _land(layout: Layout, image: np.ndarray, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    coast = layout.coast
    if coast is None:
        return np.zeros((h, w), bool)
    rows, cols = np.mgrid[r0:r0 + h, c0:c0 + w]
    depth, along = depth_along(coast, layout.size, rows, cols)
    at = np.clip(along, 0, layout.size - 1)
    land = depth < coast.profile[at]
    noise = layout.grids["land"].sample(r0, c0, h, w) * 18
    grain = rng_for(layout.seed, "grain", r0, c0, 1).normal(0, 6, (h, w)).astype(np.float32)
    layer = coast.colour + (noise + grain)[..., None]
    pier = np.zeros((h, w), bool)
    for position, width, start, stop in coast.piers:
        pier |= (along >= position) & (along <= position + width) & (depth >= start) & (depth <= stop)
    image[land] = layer[land]
    image[pier] = (190, 185, 175)
    return land | pier


def _ships(layout: Layout, image: np.ndarray, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    hulls = np.zeros((h, w), bool)
    for ship in layout.ships:
        sh, sw = ship.mask.shape
        top, left = max(ship.r0, r0), max(ship.c0, c0)
        bottom, right = min(ship.r0 + sh, r0 + h), min(ship.c0 + sw, c0 + w)
        if top >= bottom or left >= right:
            continue
        local = (slice(top - ship.r0, bottom - ship.r0), slice(left - ship.c0, right - ship.c0))
        there = (slice(top - r0, bottom - r0), slice(left - c0, right - c0))
        inside = ship.mask[local].astype(bool)
        image[there][inside] = ship.colour[local][inside]
        hulls[there] |= inside
    return hulls


def _caps(layout: Layout, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """Whitecaps: in 45% of chip-sized cells, 10 to 120 short bright streaks, blurred as data.synth does."""
    import cv2

    caps = np.zeros((h, w), np.float32)
    for cr in range(max(0, r0 // CAP_CELL), (r0 + h) // CAP_CELL + 1):
        for cc in range(max(0, c0 // CAP_CELL), (c0 + w) // CAP_CELL + 1):
            rng = rng_for(layout.seed, "caps", cr, cc)
            if rng.random() >= 0.45:
                continue
            for _ in range(int(rng.integers(10, 120))):
                x, y = rng.integers(0, CAP_CELL, 2) + [cc * CAP_CELL - c0, cr * CAP_CELL - r0]
                dx, dy = rng.integers(-8, 9, 2)
                cv2.line(caps, (int(x), int(y)), (int(x + dx), int(y + dy)), float(rng.uniform(0.4, 1)), 1)
    return cv2.GaussianBlur(caps, (3, 3), 0)


def _clouds(layout: Layout, r0: int, c0: int, h: int, w: int) -> np.ndarray:
    """Cloud cover in [0, 0.95]: soft bright blobs over about a quarter of the scene, ships included."""
    import cv2

    threshold = 0.75 + layout.grids["cloud_extent"].sample(r0, c0, h, w) * 0.6
    cover = np.clip(layout.grids["cloud"].sample(r0, c0, h, w) * 1.5 - threshold, 0, 1)
    return cv2.GaussianBlur(cover, (0, 0), 12) * layout.amplitudes["cloud"]


def valid_footprint(rows: np.ndarray, cols: np.ndarray, size: int, margin: int) -> np.ndarray:
    """The footprint: `margin` px of nodata on each side and a corner cut on the diagonal, like a real collar."""
    if margin == 0:
        return np.ones(np.broadcast(rows, cols).shape, bool)
    inside = (rows >= margin) & (rows < size - margin) & (cols >= margin) & (cols < size - margin)
    return inside & (rows + cols >= 4 * margin)


def place_ships(layout: Layout, count: int, crossing_fraction: float, lines: np.ndarray, margin: int) -> None:
    """Ships at sea inside the footprint, never overlapping another group; about `crossing_fraction` of them
    centred on a window border, the others clear of every border; 25% in moored side-by-side pairs."""
    rng, size = rng_for(layout.seed, "ships"), layout.size
    boxes: list[tuple[int, int, int, int]] = []
    for _ in range(count * 200):
        if len(layout.ships) >= count:
            break
        length, width = ship_shape(rng, size * 0.3)
        angle, cross = rng.uniform(0, 2 * np.pi), rng.random() < crossing_fraction
        pair = rng.random() < 0.25 and len(layout.ships) + 2 <= count
        reach = length / 2 + width * (2 if pair else 1) + 3
        if 2 * (margin + reach) >= size:  # too big for this (small) scene: draw another
            continue
        cx, cy = rng.uniform(margin + reach, size - margin - reach, 2)
        if cross:  # move the centre onto a border (of columns or of rows) within a quarter length
            line = float(rng.choice(lines[(lines > margin + reach) & (lines < size - margin - reach)]
                                    if len(lines) else [cx]))
            shift = rng.uniform(-length / 4, length / 4)
            cx, cy = (line + shift, cy) if rng.random() < 0.5 else (cx, line + shift)
        group = [draw_ship(rng, length, width, angle, cx - np.sin(angle) * width * k, cy + np.cos(angle) * width * k,
                           size) for k in range(2 if pair else 1)]
        box = _box(group)
        if _acceptable(layout, group, box, boxes, lines, cross, margin):
            _unclaim_shared(group)
            boxes.append(box)
            layout.ships.extend(group)


def _box(group: list[DrawnShip]) -> tuple[int, int, int, int]:
    return (min(s.r0 for s in group), min(s.c0 for s in group), max(s.r0 + s.mask.shape[0] for s in group),
            max(s.c0 + s.mask.shape[1] for s in group))


def _acceptable(layout: Layout, group: list[DrawnShip], box: tuple[int, int, int, int], boxes: list,
                lines: np.ndarray, cross: bool, margin: int) -> bool:
    r0, c0, r1, c1 = box
    rows, cols = np.array([r0, r0, r1, r1]), np.array([c0, c1, c0, c1])
    if not valid_footprint(rows, cols, layout.size, margin + 2).all():
        return False
    if any(on_land(layout, r, c, 0) for r, c in zip(rows, cols, strict=True)):
        return False
    if any(r0 < b1 + 3 and b0 < r1 + 3 and c0 < d1 + 3 and d0 < c1 + 3 for b0, d0, b1, d1 in boxes):
        return False
    across = any(crosses(ship, lines) for ship in group)
    clear = not any(((lines >= lo - 1) & (lines <= hi + 1)).any() for lo, hi in ((r0, r1), (c0, c1)))
    return across if cross else clear


def crosses(ship: DrawnShip, lines: np.ndarray) -> bool:
    """Whether the ship's pixels lie on both sides of a window edge (pixels [.., line) and [line, ..))."""
    rows, cols = np.nonzero(ship.mask)
    rows, cols = rows + ship.r0, cols + ship.c0
    return any(((lines > lo) & (lines <= hi)).any() for lo, hi in ((rows.min(), rows.max()), (cols.min(), cols.max())))


def _unclaim_shared(group: list[DrawnShip]) -> None:
    """Pixels both hulls of a moored pair cover belong to neither (as in the Airbus masks)."""
    if len(group) < 2:
        return
    r0, c0, r1, c1 = _box(group)
    counts = np.zeros((r1 - r0, c1 - c0), np.uint8)
    for ship in group:
        h, w = ship.mask.shape
        counts[ship.r0 - r0:ship.r0 - r0 + h, ship.c0 - c0:ship.c0 - c0 + w] += ship.mask
    for ship in group:
        h, w = ship.mask.shape
        ship.mask[counts[ship.r0 - r0:ship.r0 - r0 + h, ship.c0 - c0:ship.c0 - c0 + w] > 1] = 0
