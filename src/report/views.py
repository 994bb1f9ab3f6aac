"""The report's views: each draws figures of a sweep's Report (src/report/layout.py). Apart from
grid.py because they need torch and matplotlib, which a sweep's main process leaves to its workers.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.report import figures
from src.report.layout import Group, Report, spread
from src.report.results import Axis
from src.run.generators import make_splits
from src.run.nets import mlp_from_hparams
from src.run.schema import SEED_KEY, drawing_args

MESH = 120  # decision boundaries: points per side of the evaluation mesh
# How much of a long grid a figure draws: at most this many values of an axis, evenly spaced,
# the first and the last included (layout.spread). The design card's 7 x 6 grid is drawn whole,
# with a facet of up to 2 values too; so any grid's figures are bounded in size and time.
BOUNDARY_ROWS = 8  # rows of boundaries.png's panels
BOUNDARY_COLS = 8  # its columns: about a page's width
BOUNDARY_FACET_COLS = 12  # its columns when the facets' blocks stand side by side, shared
LINE_PANELS = 16  # panels of learning_curves.png and gradient_norms.png: rows x facets
LINES = 10  # lines of one panel there, and of params.png


@dataclass
class Shown:
    """What a figure draws of the grid: some of its rows and columns, each facet's cells at
    them, and a note for the title saying which ("" when the whole grid is drawn)."""

    row: Axis
    col: Axis
    panels: list[tuple[str, list[list[Group | None]]]]
    note: str


def shown(r: Report, most_rows: int, most_cols: int) -> Shown:
    """The rows and columns of the grid a figure draws, at most `most_rows` x `most_cols`."""
    rows = spread(len(r.row.values), max(2, most_rows))
    cols = spread(len(r.col.values), max(2, most_cols))
    notes = []
    for axis, kept in ((r.row, rows), (r.col, cols)):
        if len(kept) < len(axis.values):
            picked = [str(axis.values[i]) for i in kept]
            listed = ", ".join(picked if len(picked) <= 6 else [*picked[:3], "...", picked[-1]])
            notes.append(
                f"{len(kept)} of the {len(axis.values)} values of {axis.key}, evenly spaced "
                f"({listed})"
            )
    return Shown(
        Axis(r.row.key, [r.row.values[i] for i in rows]),
        Axis(r.col.key, [r.col.values[j] for j in cols]),
        [(name, [[cells[i][j] for j in cols] for i in rows]) for name, cells in r.panels()],
        "drawn: " + " and ".join(notes) if notes else "",
    )


def _context(r: Report, *more: str) -> str:
    """The title's parenthesis: the report's context, then what the figure left out."""
    return "; ".join(part for part in (r.context, *more) if part)


def data_splits(r: Report, data: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The data set a job trained on, regenerated from its config's data section."""
    key = tuple(sorted(data.items()))
    if key not in r.splits_cache:
        splits = make_splits(**drawing_args(data)).items()
        r.splits_cache[key] = {s: (x.numpy(), y.numpy()) for s, (x, y) in splits}
    return r.splits_cache[key]


def boundary(r: Report, g: Group, label: str) -> figures.Boundary | None:
    """The saved model's sigmoid output on a mesh over its data, validation points on top;
    None if its model.pt cannot be loaded (missing, cut short, not this net's weights)."""
    run = r.run_of(g)
    try:
        saved = torch.load(r.sweep_dir / run["job_dir"] / "model.pt", weights_only=True)
        net = mlp_from_hparams(saved["hparams"])  # residual, norm: the net the job trained
        net.load_state_dict(saved["state_dict"])
    except Exception:  # any unreadable file: that panel stays blank, the report goes on
        return None
    splits = data_splits(r, r.records[run["job_dir"]]["config"]["data"])
    points = np.concatenate([splits["train"][0], splits["val"][0]])
    lo, hi = points.min(axis=0), points.max(axis=0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], MESH), np.linspace(lo[1], hi[1], MESH))
    mesh = torch.tensor(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype=torch.float32)
    with torch.no_grad():
        probs = torch.sigmoid(net(mesh)).reshape(MESH, MESH).numpy()
    extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    return figures.Boundary(probs, extent, *splits["val"], f"{label} seed={run.get(SEED_KEY)}")


def curve(histories: list[list[dict[str, float]]]) -> figures.Curve:
    """Per epoch, the mean across runs and the band from the lowest to the highest run (a run
    that stopped early counts until it stops). The loss axis is logarithmic: a band of mean ±
    std would fall below zero, off the axis, wherever the seeds spread widely; min-max stays
    positive and holds every run."""
    n = max(len(h) for h in histories)
    bands = []  # train_loss's mean, lo and hi, then val_loss's: Curve's fields in order
    for key in ("train_loss", "val_loss"):
        table = np.full((len(histories), n), np.nan)
        for i, history in enumerate(histories):
            table[i, : len(history)] = [record[key] for record in history]
        bands += [stat(table, axis=0) for stat in (np.nanmean, np.nanmin, np.nanmax)]
    return figures.Curve(np.arange(n), *bands)


def data_figure(r: Report) -> list[Path]:
    data = r.records[r.run_of(r.ranked[0])["job_dir"]]["config"]["data"]
    splits = data_splits(r, data)
    title = (
        f"data set {data['name']}: noise {data['noise']}, data seed {data['seed']} "
        f"(the best configuration's)"
    )
    return [figures.plot_data({s: splits[s] for s in ("train", "val")}, title, r.out / "data.png")]


def heatmap_figures(r: Report) -> list[Path]:
    n_seeds = max(len(g.runs) for g in r.groups)

    def note(g: Group | None) -> str:
        if g is None:
            return ""
        text = f"\n{len(g.ok)}/{n_seeds} seeds" if len(g.ok) < n_seeds else ""
        return text + "".join(f"\n{k.split('.')[-1]}={g.config.get(k)}" for k in r.tuned)

    def table(metric: str, stat: str) -> np.ndarray:  # (facets, rows, cols)
        return np.array(
            [
                [[getattr(g, stat)(metric) if g else np.nan for g in line] for line in cells]
                for _, cells in r.panels()
            ]
        )

    paths = []
    facets = [name for name, _ in r.panels()]  # [""] without a facet
    notes = [[[note(g) for g in line] for line in cells] for _, cells in r.panels()]
    for metric in ("val_loss", "val_accuracy"):
        grid = " x ".join(k for k in (r.row.key, r.col.key) if k) or "all jobs"
        title = f"{metric} over {grid} ({r.context})"
        path = r.out / f"heatmap_{metric}.png"
        mean, std = table(metric, "mean"), table(metric, "std")
        paths.append(
            figures.plot_heatmaps(mean, std, r.row, r.col, metric, title, path, notes, facets)
        )
    return paths


@contextmanager
def one_thread():
    """Torch on one thread meanwhile (here: while the boundaries are drawn): the nets are tiny,
    and on a busy machine two threads made the decision boundaries of the 252-job grid ten
    times slower (the sweep's workers have one thread already)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@one_thread()
def boundary_figures(r: Report) -> list[Path]:
    """A panel per cell, laid out as the grid (a long grid: evenly spaced rows and columns of
    it, see Shown), and the best and the worst configuration large."""
    facets = len(r.facet.values)
    s = shown(r, BOUNDARY_ROWS, BOUNDARY_COLS if facets == 1 else BOUNDARY_FACET_COLS // facets)

    def small(g: Group | None) -> figures.Boundary | None:
        return boundary(r, g, f"val_loss {r.run_of(g)['val_loss']:.3f}") if g else None

    grids = [[[small(g) for g in line] for line in cells] for _, cells in s.panels]
    models = sum(g is not None for _, cells in s.panels for line in cells for g in line)
    unreadable = models - sum(b is not None for grid in grids for line in grid for b in line)
    blank = f"; {unreadable} unreadable model.pt (missing or corrupt), blank" if unreadable else ""
    title = (
        f"decision boundaries (colour: sigmoid output, blue 0 to red 1; line: 0.5), "
        f"seed {r.seed}, validation points ({_context(r, s.note)}{blank})"
    )
    path = r.out / "boundaries.png"
    if r.facet.key:  # one block of the grid per facet value, side by side
        names = [name for name, _ in s.panels]
        paths = [figures.plot_boundary_grid(grids, s.row, s.col, title, path, names)]
    else:
        paths = [figures.plot_boundary_grid(grids[0], s.row, s.col, title, path)]
    ranked = r.ranked
    big = {
        name: boundary(r, g, f"{g.describe(r.swept)}, mean val_loss {g.mean('val_loss'):.3f},")
        for name, g in (("best", ranked[0]), ("worst", ranked[-1]))
    }
    readable = {name: b for name, b in big.items() if b is not None}
    if readable:
        lost = "".join(
            f"; the {name}'s model.pt is unreadable" for name in big if name not in readable
        )
        title = f"best and worst configuration by mean val_loss ({r.context}{lost})"
        paths.append(figures.plot_boundaries(readable, title, r.out / "boundaries_best_worst.png"))
    return paths


def _row_panels(r: Report, line_of) -> tuple[dict[str, dict[str, Any]], int | None, str]:
    """Panels of lines: one panel per row of the grid, one line per cell (`line_of(g)`, None
    for no line); with a facet, a row of panels per row of the grid, one per facet value. A
    long grid gives at most LINE_PANELS panels of LINES lines (see Shown). Returns the panels,
    the panels per row (None: the figure's default) and the note of what was left out."""
    s = shown(r, LINE_PANELS // len(r.facet.values), LINES)
    panels = {}
    for i, value in enumerate(s.row.values):
        for facet, cells in s.panels:
            lines = {
                s.col.name(c): line_of(g) for c, g in zip(s.col.values, cells[i]) if g is not None
            }
            lines = {k: v for k, v in lines.items() if v is not None}
            if lines:
                panels[", ".join(x for x in (s.row.name(value), facet) if x)] = lines
    return panels, (len(r.facet.values) if r.facet.key else None), s.note


def curve_figures(r: Report) -> list[Path]:
    panels, ncols, note = _row_panels(
        r, lambda g: curve([r.records[x["job_dir"]]["history"] for x in g.ok])
    )
    band = "shaded from the lowest to the highest seed"
    title = f"learning curves, mean across seeds, {band} ({_context(r, note)})"
    path = r.out / "learning_curves.png"
    return [figures.plot_curves(panels, r.col.key, title, path, ncols)]


GRAD_NORM = "grad_norm/layer_{}"  # a history record's key of layer i's weight gradient norm


def _number(value: Any) -> float:
    """A record's value as a float; NaN (left out of the means) if it is none or no number."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok else np.nan


def grad_norms(histories: list[list[dict[str, float]]]) -> figures.GradNorms | None:
    """Per layer, the geometric mean across runs of the gradient norm at their first and at
    their last epoch (norms spread over decades: the arithmetic mean is the largest run's);
    None when no run has gradient norms (sweeps older than them) or the net has one layer."""
    runs = [h for h in histories if GRAD_NORM.format(0) in h[0]]
    if not runs:
        return None
    layers = range(sum(GRAD_NORM.format(i) in runs[0][0] for i in range(len(runs[0][0]))))
    if len(layers) < 2:  # depth 0: no layers to compare
        return None

    def geometric_mean(records: list[dict[str, float]]) -> np.ndarray:
        norms = np.array([[_number(x.get(GRAD_NORM.format(i))) for i in layers] for x in records])
        with np.errstate(divide="ignore"):  # a norm of 0 makes a mean of 0, off the log axis
            return np.exp(np.nanmean(np.log(norms), axis=0))

    return figures.GradNorms(
        geometric_mean([h[0] for h in runs]), geometric_mean([h[-1] for h in runs])
    )


def gradient_figures(r: Report) -> list[Path]:
    """The weight gradient norm by layer, first and last epoch: does it vanish in deep nets?
    Not drawn when no finished run has gradient norms."""
    histories = {job: record["history"] for job, record in r.records.items()}
    panels, ncols, note = _row_panels(
        r, lambda g: grad_norms([histories[x["job_dir"]] for x in g.ok])
    )
    if not panels:
        return []
    without = sum(GRAD_NORM.format(0) not in h[0] for h in histories.values())
    skipped = f"; {without} finished runs have no gradient norms, left out" if without else ""
    title = (
        f"weight gradient norm by layer (0: input layer, depth: output layer), mean over each "
        f"epoch's steps, geometric mean across seeds; first epoch dashed, each run's last epoch "
        f"solid ({_context(r, note)}{skipped})"
    )
    path = r.out / "gradient_norms.png"
    return [figures.plot_gradient_norms(panels, r.col.key, title, path, ncols)]


def params_figures(r: Report, metric: str = "val_loss") -> list[Path]:
    """The metric against the number of parameters of one net: one line per row of the grid
    (depth), a point per cell (width), so that nets of one budget compare; a panel per facet."""
    s = shown(r, LINES, len(r.col.values))  # every point of a line, at most LINES lines
    panels = {}
    for facet, cells in s.panels:
        lines = {}
        for value, line in zip(s.row.values, cells):
            groups = sorted((g for g in line if g), key=lambda g: g.ok[0]["n_params"])
            if groups:
                runs = [[x[metric] for x in g.ok] for g in groups]
                stats = [np.array([stat(x) for x in runs]) for stat in (np.mean, np.min, np.max)]
                n_params = np.array([g.ok[0]["n_params"] for g in groups])
                lines[s.row.name(value)] = figures.Series(n_params, *stats)  # mean, lo, hi
        panels[facet] = lines
    title = (
        f"{metric} against the number of parameters of one net: a line per {r.row.key or 'grid'}"
        f", a point per {r.col.key or 'cell'}, mean across seeds, bars from the lowest to the "
        f"highest seed ({_context(r, s.note)})"
    )
    xlabel = "parameters of one net (n_params, log scale)"
    ylabel = f"{metric} (log scale)"
    path = r.out / "params.png"
    return [figures.plot_params(panels, xlabel, ylabel, r.row.key, title, path)]
