"""Ship instances from masks: connected components, size filtering, and per-instance runs.

A label image (H, W) int32 (0 = sea, i = ship i) is the one instance representation: instances
made from it can never overlap, which the competition requires of a submission.
"""

from __future__ import annotations

import numpy as np

from shiptoolkit.data.rle import runs_to_rle

# 8-connectivity: thin ships at an angle are chains of diagonal pixels; 4-connectivity splits them.
_EIGHT = np.ones((3, 3), bool)


def label_instances(mask: np.ndarray, min_area: int = 0) -> np.ndarray:
    """Connected components of a binary mask as consecutive labels 1..n; smaller than `min_area` dropped.

    Args:
        mask: (H, W) array, nonzero = ship.
        min_area: components with fewer pixels are removed (0 keeps all).
    """
    from scipy import ndimage

    labels, n = ndimage.label(np.asarray(mask) != 0, structure=_EIGHT)
    labels = labels.astype(np.int32, copy=False)
    if n and min_area > 0:
        areas = np.bincount(labels.ravel(), minlength=n + 1)
        keep = areas >= min_area
        keep[0] = False
        relabel = np.zeros(n + 1, np.int32)
        relabel[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
        labels = relabel[labels]
    return labels


def split_touching(mask: np.ndarray, depth: float = 1.5, min_area: int = 0) -> np.ndarray:
    """Instance labels with touching ships split: watershed of the distance transform.

    A blob of two ships is wide where each ship is and narrow where they touch: its distance
    map (distance of each pixel to the sea) has one peak per ship. Each peak that rises at least
    `depth` px above the neck to its neighbour seeds a watershed; a blob with one such peak stays
    whole, so single ships are not cut. Ships moored flush side by side form no neck and are not
    split (a predicted boundary channel would be needed for those).

    Args:
        mask: (H, W) array, nonzero = ship.
        depth: minimum peak prominence in pixels (larger = fewer splits).
        min_area: pieces with fewer pixels are removed after splitting.
    """
    from scipy import ndimage
    from skimage.morphology import local_maxima, reconstruction
    from skimage.segmentation import watershed

    blobs = label_instances(mask)
    out = np.zeros(blobs.shape, np.int32)
    n = 0
    for k, box in enumerate(ndimage.find_objects(blobs), start=1):  # each blob in its bounding box: fast
        box = tuple(slice(max(0, s.start - 1), s.stop + 1) for s in box)  # a sea border for the transform
        blob = blobs[box] == k
        dist = ndimage.distance_transform_edt(blob)
        # h-domes: peaks of the distance map rising `depth` above their surroundings, found as the
        # plateaus of the reconstruction of (dist - depth) under dist (skimage's h_maxima returns
        # scattered points on float ridges, which would cut one ship into several).
        domes = local_maxima(reconstruction(dist - depth, dist, method="dilation"), connectivity=2)
        markers, count = ndimage.label(domes & blob, structure=_EIGHT)
        pieces = watershed(-dist, markers, mask=blob) if count > 1 else blob.astype(np.int32)
        target = out[box]
        target[pieces > 0] = pieces[pieces > 0] + n
        n += max(count, 1)
    return _keep_large(out, min_area)  # not label_instances(): that would rejoin the touching pieces


def seam_pixels(labels: np.ndarray, width: int = 1) -> np.ndarray:
    """Ship pixels within `width` px of a *different* ship: the seams between touching ships.

    The target of a model's boundary channel (`train.seam_channel`): where two ships touch,
    their union is one blob, and only the seam tells them apart.
    """
    from scipy import ndimage

    labels = np.asarray(labels)
    ship = labels > 0
    if not ship.any():
        return np.zeros(labels.shape, bool)
    footprint = np.ones((2 * width + 1,) * 2, bool)
    higher = ndimage.grey_dilation(labels, footprint=footprint) > labels
    background_high = np.where(ship, labels, np.iinfo(np.int32).max).astype(np.int32)
    lower = ndimage.grey_erosion(background_high, footprint=footprint) < labels
    return ship & (higher | lower)


def split_by_seams(prob: np.ndarray, seam: np.ndarray, threshold: float = 0.5, min_area: int = 0,
                   seam_threshold: float = 0.5) -> np.ndarray:
    """Instance labels with blobs split along a predicted seam channel.

    Ship pixels off the seams form one core per ship; every ship pixel then joins the core it
    reaches first through the seam-probability landscape (a watershed). A blob that is all
    seam keeps its own label rather than vanish.

    Args:
        prob: ship probabilities (H, W).
        seam: seam probabilities (H, W), the model's second output channel.
        threshold: pixels with `prob` above it are ship.
        min_area: pieces with fewer pixels are removed.
        seam_threshold: ship pixels with `seam` above it are seam, not core.
    """
    from skimage.segmentation import watershed

    ship = prob > threshold
    cores = label_instances(ship & (seam <= seam_threshold), min_area=4)  # specks are noise, not ships
    pieces = watershed(seam, cores, mask=ship) if cores.max() else np.zeros(ship.shape, np.int32)
    orphans = label_instances(ship & (pieces == 0))  # blobs without a core stay whole
    pieces = np.where(orphans > 0, orphans + pieces.max(), pieces)
    return _keep_large(pieces.astype(np.int32), min_area)


def _keep_large(labels: np.ndarray, min_area: int) -> np.ndarray:
    """Labels renumbered 1..n, those with fewer than `min_area` pixels removed."""
    areas = np.bincount(labels.ravel())
    keep = areas >= max(min_area, 1)
    keep[0] = False
    lookup = np.zeros(len(areas), np.int32)
    lookup[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    return lookup[labels]


def instance_runs(labels: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Column-major 0-indexed `(starts, lengths)` of each label 1..max, in one vectorised pass.

    Labels absent from the image get empty runs, so item i-1 always belongs to label i.
    """
    flat = np.asarray(labels).T.reshape(-1)
    n = int(flat.max()) if flat.size else 0
    if n == 0:
        return []
    change = np.flatnonzero(np.diff(flat)) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    values = flat[starts]
    ship = values > 0
    starts, lengths, values = starts[ship], lengths[ship], values[ship]
    order = np.argsort(values, kind="stable")  # stable: runs of one label stay sorted by start
    starts, lengths, values = starts[order], lengths[order], values[order]
    bounds = np.searchsorted(values, np.arange(1, n + 2))
    starts, lengths = starts.astype(np.int64), lengths.astype(np.int64)
    return [(starts[bounds[i]:bounds[i + 1]], lengths[bounds[i]:bounds[i + 1]]) for i in range(n)]


def instances_to_rles(labels: np.ndarray) -> list[str]:
    """One Kaggle RLE string per non-empty instance of a label image."""

    return [runs_to_rle(s, n) for s, n in instance_runs(labels) if s.size]
