"""Ships on whole georeferenced scenes: streaming tiled prediction, stitched ships, vector output.

The API (what `shiptoolkit detect` runs)::

    detect_scenes(model, scenes, out, *, bands=None, scale=None, window=768, overlap=0.0,
                  border_context=96, resample=False, probabilities=None, force=False, progress=True,
                  overrides=()) -> DetectSummary

`model` is a run directory (its best.keras, config.toml, postprocess.json and gate), an export
folder (`shiptoolkit export`), or a `Detector` (`load_detector`, `detector_for`). `scenes`: one
path or several (GeoTIFF/COG/anything rasterio reads). `out`: .geojson, .gpkg or .fgb, never
written over unless `force`. `bands` "1,2,3" (1-based, the model's R,G,B order); `scale`
"p2,p98" (percentile stretch per band, from an overview) or "0,3000" (fixed range) for scenes
that are not 8-bit (default p2,p98 for them); `window` and `overlap`: the scene windows (the
chips the model sees, as `predict` sees a 768 px image); `border_context`: the context (px) around a
ship at a window border in the window it is predicted again on (0: none); `resample`: read the
scene at the model's data.pixel_size_m; `probabilities`: a .tif path for the stitched probability COG.

Why windows do not overlap by default, and what is done at their borders: stitching joins a ship's
fragments across core borders whatever the overlap, but a window's edge pixels are predicted with
no context beyond the edge. On benchmarks/scenes.py's 12,288 + 3,072 px scenes (quickstart model),
at overlap 0 and nothing more, ships across borders were found at 0.42 against 0.54 inside windows
(size-matched difference 0.117 +- 0.040) and 18 came out in two pieces with a gap of sea at the
border; overlap 0.25 (96 px of context at every core border) mends that, but a 3,072 px scene is
then 25 windows of 768 px instead of 16 (0.6x the throughput of `predict` on the same chips). So
windows sit side by side, and a model that predicts by sliding patches (the quickstart's) gets one
lattice of patches over the whole scene (`shiptoolkit.scenes.lattice`: no borders for the model, at
`predict`'s cost), while a model that takes whole windows gets centred windows
(`shiptoolkit.scenes.recentre`): 96 px of context only where a ship lies at a border, one small
window per such ship.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shiptoolkit import __version__
from shiptoolkit.config import Config, prepare_config
from shiptoolkit.data.instances import label_instances
from shiptoolkit.errors import ConfigError
from shiptoolkit.inference.exported import find_export, load_export
from shiptoolkit.inference.gate import Gate
from shiptoolkit.inference.prediction import PredictSettings, predict_images, ship_count, whole_image_model
from shiptoolkit.inference.replicas import spread, trace_any_batch
from shiptoolkit.inference.stage import checked_model, gate_for, tuned_beside
from shiptoolkit.rundir import RunDir
from shiptoolkit.scenes.collect import ShipCollector
from shiptoolkit.scenes.lattice import LatticeBlend, lattice_sums, scene_lattice
from shiptoolkit.scenes.probmap import ProbabilityMap, probability_paths
from shiptoolkit.scenes.reading import SceneReader, check_scene, parse_bands, parse_scale, require_geo
from shiptoolkit.scenes.recentre import DEFAULT_CONTEXT
from shiptoolkit.scenes.ships import Ship
from shiptoolkit.scenes.stitch import ScenePieces, Tile, WindowGrid
from shiptoolkit.scenes.vectors import SceneShips, check_free, output_driver, write_ships

CHUNK = 8  # windows read ahead and predicted together
DEFAULT_OVERLAP = 0.0  # see the module docstring: centred windows give ships at core borders their context
# GDAL's block cache (default: 5% of the RAM) would keep every block of the scene read so far: a window row
# and its overlap need a few MB, so a small cache keeps memory flat whatever the scene's size.
GDAL_CACHE_MB = 64


@dataclass
class Detector:
    """A segmenter ready to predict (whole-image clone, devices), its [predict] settings, gate and pixel size."""

    model: Any
    settings: PredictSettings
    gate: Gate | None = None
    pixel_size_m: float = 1.5
    name: str = "model"


def detector_for(config: Config, model, gate: Gate | None = None) -> Detector:
    """A `Detector` from a resolved config and a model (a .keras path, whose postprocess.json and gate beside it
    are used, or a model object, e.g. an export's segmenter with its `gate`)."""
    settings = PredictSettings.from_config(config, tuned_beside(model))
    gate = gate_for(config, model, gate)
    name = str(model) if isinstance(model, (str, Path)) else getattr(model, "name", type(model).__name__)
    model = checked_model(model, config)
    if settings.whole_image and not settings.resize:
        model = whole_image_model(model)
    model = spread(model, settings.strategy)
    trace_any_batch(model)  # windows and centred windows end in short batches of many sizes
    gate = gate.spread(settings.strategy) if gate is not None else None
    if gate is not None:
        trace_any_batch(gate.model)  # and the gate sees chunks of windows, and border views 1 to 3 at a time
    return Detector(model, settings, gate, config.settings.data.pixel_size_m, name)


def load_detector(run_or_export: str | Path, config: str | Path | dict | None = None,
                  overrides: Sequence[str] = ()) -> Detector:
    """The `Detector` of a run directory (its config.toml unless `config`) or of an export folder."""
    export = find_export(run_or_export)
    if export is not None:
        loaded = load_export(export)
        resolved, gate = loaded.predict_config(config, tuple(overrides))
        return detector_for(resolved, loaded.segmenter, gate)
    run = RunDir(run_or_export)
    if not run.best.is_file():
        raise ConfigError(f"{str(run_or_export)!r} is neither a run directory (no {run.best.name}) nor an export "
                          "(`shiptoolkit export`): give the folder of a trained run or of an export.")
    return detector_for(prepare_config(config or run.config, list(overrides)), str(run.best))


@dataclass
class SceneSummary:
    """One scene's counts: windows (predicted, all nodata, rejected by the gate), centred windows (ships at borders
    predicted again), km² of valid pixels, ships."""

    path: str
    windows: int = 0
    predicted: int = 0
    nodata: int = 0
    rejected: int = 0
    centred_windows: int = 0
    border_views: tuple[int, int] = (0, 0)  # views across rejected windows' borders: gated, accepted
    km2: float = 0.0
    ships: int = 0
    seconds: float = 0.0
    probabilities: Path | None = None
    info: dict = field(default_factory=dict)
    patch_lattice: tuple[int, int] | None = None  # (patch, stride) of a sliding-patch model's lattice, or None


@dataclass
class DetectSummary:
    """What `detect_scenes` wrote: the vector file, its ships, each scene's counts, the time taken."""

    out: Path
    scenes: list[SceneSummary]
    seconds: float

    @property
    def ships(self) -> int:
        return sum(s.ships for s in self.scenes)

    @property
    def km2(self) -> float:
        return sum(s.km2 for s in self.scenes)

    @property
    def windows(self) -> int:
        return sum(s.windows for s in self.scenes)

    @property
    def km2_per_second(self) -> float:
        return self.km2 / self.seconds if self.seconds > 0 else float("nan")


def detect_scenes(model: str | Path | Detector, scenes: str | Path | Sequence[str | Path], out: str | Path, *,
                  bands: str | Sequence[int] | None = None, scale: str | tuple[float, float] | None = None,
                  window: int = 768, overlap: float = DEFAULT_OVERLAP, border_context: int = DEFAULT_CONTEXT,
                  resample: bool = False, probabilities: str | Path | None = None, force: bool = False,
                  progress: bool = True, overrides: Sequence[str] = ()) -> DetectSummary:
    """Detect ships on whole scenes and write them to `out` (see the module docstring for every argument).

    Raises:
        GeoExtraMissingError: the `geo` extra is not installed.
        ConfigError: a bad option (--bands, --scale, --window, --overlap, --border-context, an output that exists).
        DataError: a scene that cannot be read or is not georeferenced.
    """
    require_geo()
    scenes = [Path(scenes)] if isinstance(scenes, (str, Path)) else [Path(s) for s in scenes]
    maps = check_arguments(scenes, out, bands, scale, window, overlap, probabilities, force, border_context)
    detector = model if isinstance(model, Detector) else load_detector(model, overrides=overrides)
    _check_window(detector, window)
    start = time.perf_counter()
    groups, summaries = [], []
    import rasterio

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), _progress_bar(progress) as bar:
        for scene, map_path in zip(scenes, maps, strict=True):
            with SceneReader(scene, bands, parse_scale(scale), detector.pixel_size_m, resample) as reader:
                ships, summary = detect_scene(detector, reader, window, overlap, bar, map_path, force,
                                              border_context)
            groups.append(SceneShips(str(scene), reader.crs, ships))
            summaries.append(summary)
    metadata = _metadata(detector, summaries, window, overlap, border_context)
    path = write_ships(out, groups, metadata, force)
    return DetectSummary(path, summaries, time.perf_counter() - start)


def check_arguments(scenes: list[Path], out, bands, scale, window: int, overlap: float, probabilities,
                     force: bool, border_context: int = DEFAULT_CONTEXT) -> list[Path | None]:
    """Refuse every mistake that can be found before the model loads (options, outputs, scenes); returns each
    scene's probability map path (or None)."""
    if not scenes:
        raise ConfigError("No scene given: name one or more GeoTIFF/COG files.")
    if not 16 <= int(window) <= 16384:
        raise ConfigError(f"--window {window}: give a window side in pixels within 16..16384 (e.g. 768, the "
                          "side of the Airbus chips).")
    if not 0 <= float(overlap) < 1:
        raise ConfigError(f"--overlap {overlap}: give the fraction of a window shared with its neighbour, in "
                          "[0, 1), e.g. 0.25.")
    if not 0 <= int(border_context) <= 4096:
        raise ConfigError(f"--border-context {border_context}: give the context in pixels around a ship at a window "
                          f"border, within 0..4096 (e.g. {DEFAULT_CONTEXT}; 0: no centred windows).")
    output_driver(out)
    check_free(out, force)
    parse_bands(bands)
    parse_scale(scale)
    maps = probability_paths(probabilities, scenes)
    for path in maps:
        if path is not None:
            check_free(path, force, "--probabilities")
    for scene in scenes:
        check_scene(scene, bands)
    return maps


def _check_window(detector: Detector, window: int) -> None:
    """A model with a fixed input size (one that cannot run on whole images) needs windows at least that big."""
    side = _fixed_side(detector)
    if side and side > window:
        raise ConfigError(f"--window {window} is smaller than the model's fixed input ({side} px): give --window "
                          f"{side} or more (e.g. 768, the Airbus chips' side).")


class _NoBar:
    total = 0

    def update(self, n: int = 1) -> None: ...
    def refresh(self) -> None: ...
    def set_postfix_str(self, text: str) -> None: ...
    def __enter__(self): return self
    def __exit__(self, *exc) -> None: ...


def _progress_bar(progress: bool):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=0, desc="detect", unit="window")


def _metadata(detector: Detector, summaries: list[SceneSummary], window: int, overlap: float,
              border_context: int) -> dict:
    s = detector.settings
    lattice = scene_lattice(detector, window, overlap)
    return {"shiptoolkit": __version__, "model": detector.name, "window": window, "overlap": overlap,
            "border_context": border_context,
            "patch_lattice": {"patch": lattice.patch, "stride": lattice.stride} if lattice is not None else None,
            "threshold": s.threshold, "min_area": s.min_area, "split": s.split,
            "gate": detector.gate is not None, "model_pixel_size_m": detector.pixel_size_m,
            "heading_deg": "bearing of the long axis from grid north, clockwise, 0..180 (bow and stern not told apart)",
            "scenes": {summary.path: summary.info for summary in summaries}}


def _chunks(reader: SceneReader, grid: WindowGrid,
            extra: int = 0) -> Iterator[list[tuple[Tile, np.ndarray, np.ndarray]]]:
    """(tile, image, valid) in grid order, CHUNK windows at a time, the next chunk read while this one predicts;
    `extra` px more than a window on its far sides (the lattice's patches that start in it reach there)."""
    tiles = iter(grid)

    def read() -> list:
        out = []
        for tile in tiles:
            out.append((tile, *reader.read(tile.row, tile.col, grid.window + extra)))
            if len(out) == CHUNK:
                break
        return out

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(read)
        while True:
            chunk = pending.result()
            if not chunk:
                return
            pending = pool.submit(read)
            yield chunk


def detect_scene(detector: Detector, reader: SceneReader, window: int, overlap: float, bar,
                 probabilities: Path | None = None, force: bool = False,
                 border_context: int = DEFAULT_CONTEXT) -> tuple[list[Ship], SceneSummary]:
    """The ships of one scene (in its CRS) and its `SceneSummary`; `bar` counts windows and km²."""
    start = time.perf_counter()
    grid = WindowGrid(reader.height, reader.width, window, overlap)
    summary = SceneSummary(str(reader.path), windows=len(grid), info=reader.info.metadata())
    pieces = ScenePieces(reader.width)
    pixel_km2 = reader.info.pixel_size_m[0] * reader.info.pixel_size_m[1] / 1e6
    prob_map = ProbabilityMap(probabilities, reader.width, reader.height, reader.crs, reader.transform, force) \
        if probabilities is not None else None
    bar.total += len(grid)
    bar.refresh()
    s = detector.settings
    lattice = scene_lattice(detector, window, overlap)
    blend = LatticeBlend(lattice, grid) if lattice is not None else None
    summary.patch_lattice = (lattice.patch, lattice.stride) if lattice is not None else None
    ships = ShipCollector(detector, reader, grid, border_context, _smallest_window(detector, window), prob_map, blend)
    try:
        for chunk in _chunks(reader, grid, blend.extra if blend is not None else 0):
            predicted = _predict_lattice_chunk(detector, blend, chunk, summary) if blend is not None \
                else _predict_chunk(detector, chunk, summary)
            for tile, image, prob, valid, gate_p in predicted:
                ships.saw(tile, image, valid, gate_p)
                mask = tile.core((prob > s.threshold) & valid)
                pieces.add(tile, mask, tile.core(prob), gate_p)
                if prob_map is not None:
                    prob_map.write(tile, tile.core(np.where(valid, prob, 0.0)))
                summary.km2 += float(tile.core(valid).sum()) * pixel_km2
                if tile.j == len(grid.cols) - 1:  # ships that cannot grow leave their pixels behind
                    ships.finished(pieces.finished(grid.row_bounds[tile.i + 1], ships.gap), grid.row_bounds[tile.i])
            bar.update(len(chunk))
            bar.set_postfix_str(f"{summary.km2:.2f} km²")
        ships.finished(pieces.rest(), grid.row_bounds[-1])
    except BaseException:
        if prob_map is not None:
            prob_map.discard()
        raise
    summary.probabilities = prob_map.close() if prob_map is not None else None
    found = ships.ships()
    summary.ships, summary.seconds = len(found), time.perf_counter() - start
    summary.centred_windows, summary.border_views = ships.centred_windows, ships.border_views
    return found, summary


def _smallest_window(detector: Detector, window: int) -> int:
    """The smallest centred window the model takes as it takes `window`: its fixed input, or `window` itself when
    predict.resize scales windows to the training scale (a smaller one would be enlarged)."""
    if detector.settings.resize:
        return window
    windowed = detector.settings.window if not detector.settings.whole_image else 0
    return int(_fixed_side(detector) or windowed or 0)


def _fixed_side(detector: Detector) -> int | None:
    """The side of the model's fixed input, or None for a model that takes any size."""
    shape = getattr(detector.model, "input_shape", None)
    return shape[1] if isinstance(shape, tuple) and len(shape) == 4 else None


def _predict_chunk(detector: Detector, chunk: list, summary: SceneSummary):
    """(tile, image, probabilities, valid, gate probability) per window; all-nodata windows are not predicted
    (zeros)."""
    s = detector.settings
    todo = [(str(k), image) for k, (_, image, valid) in enumerate(chunk) if valid.any()]
    predictions = {p.image_id: p for p in predict_images(detector.model, todo, s, detector.gate)} if todo else {}
    summary.predicted += len(todo)
    summary.nodata += len(chunk) - len(todo)
    for k, (tile, image, valid) in enumerate(chunk):
        p = predictions.get(str(k))
        if p is None:
            yield tile, image, np.zeros(valid.shape, np.float32), valid, float("nan")
            continue
        gate_p = p.ship_probability
        if detector.gate is not None and not detector.gate.accepts(gate_p):
            summary.rejected += 1
        yield tile, image, _window_rules(p.prob, valid, s), valid, gate_p


def _predict_lattice_chunk(detector: Detector, blend: LatticeBlend, chunk: list, summary: SceneSummary):
    """As `_predict_chunk`, on windows read `extra` px wider: the gate on each window, the scene's lattice of
    patches on those it accepts (`shiptoolkit.scenes.lattice`)."""
    s, w = detector.settings, blend.window
    views = [(tile, image[:w, :w], valid[:w, :w], image) for tile, image, valid in chunk]
    todo = [k for k, (_, _, valid, _) in enumerate(views) if valid.any()]
    gate_p = {k: float(p) for k, p in zip(todo, detector.gate.ship_probability([views[k][1] for k in todo]),
                                          strict=True)} if detector.gate is not None and todo else {}
    accepted = [k for k in todo if detector.gate is None or detector.gate.accepts(gate_p[k])]
    sums = lattice_sums(detector.model, np.stack([views[k][3] for k in accepted]), blend.lattice, s.batch_size,
                        s.tta, np.stack([chunk[k][2] for k in accepted])) if accepted else None
    summary.predicted += len(todo)
    summary.nodata += len(chunk) - len(todo)
    summary.rejected += len(todo) - len(accepted)
    position = {k: n for n, k in enumerate(accepted)}
    for k, (tile, image, valid, _) in enumerate(views):
        own = sums[position[k]] if k in position else None
        prob = blend.core(tile, own, rejected=k in todo and k not in position)
        yield tile, image, prob if own is None else _window_rules(prob, valid, s), valid, gate_p.get(k, float("nan"))


def _window_rules(prob: np.ndarray, valid: np.ndarray, s: PredictSettings) -> np.ndarray:
    """A window's probabilities with its nodata at 0, and all 0 when `predict` would give the image no ships:
    below predict.gate_threshold, or more than predict.max_ships ships."""
    prob = prob.astype(np.float32, copy=False)
    if not valid.all():  # most windows are all valid: no copy of their probabilities then
        prob = np.where(valid, prob, np.float32(0))
    if s.gate_threshold and float(prob.max()) < s.gate_threshold:
        return np.zeros_like(prob)
    if s.max_ships and ship_count(label_instances(prob > s.threshold, s.min_area)) > s.max_ships:
        return np.zeros_like(prob)
    return prob
