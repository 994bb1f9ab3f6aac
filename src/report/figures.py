"""The report's figures, drawn from plain arrays (src/report/views.py computes them from a sweep).

Every function writes one PNG to `path` and returns it. Rows of a grid are drawn top to
bottom in the order given, columns left to right, like a table.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render straight to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from src.report.results import Axis, writing  # noqa: E402  (figures.Axis: the grid's axes)

CLASS_COLOURS = ("#2166ac", "#b2182b")  # class 0 blue, class 1 red: the ends of RdBu_r
DPI = 100
LUMA = np.array([0.299, 0.587, 0.114])


@dataclass
class Boundary:
    """A model's sigmoid output on a mesh over `extent` (x0, x1, y0, y1), and points on top."""

    probs: np.ndarray  # (n, n), rows along y from y0 to y1
    extent: tuple[float, float, float, float]
    x: np.ndarray  # (m, 2) points
    y: np.ndarray  # (m,) labels in {0, 1}
    label: str = ""


def _title(fig: plt.Figure, title: str, fontsize: float = 12) -> int:
    """A suptitle wrapped to the figure's width; returns its number of lines."""
    chars = int(fig.get_figwidth() * 135 / fontsize)
    lines = textwrap.wrap(title, chars)
    fig.suptitle("\n".join(lines), fontsize=fontsize)
    return len(lines)


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    try:
        with writing(path):  # a full disk or a read-only folder names the figure's file
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def _scatter(ax: plt.Axes, x: np.ndarray, y: np.ndarray, size: float) -> None:
    colours = np.asarray(CLASS_COLOURS)[y.astype(int)]
    ax.scatter(x[:, 0], x[:, 1], c=colours, s=size, linewidths=0.2, edgecolors="white")


def plot_data(splits: dict[str, tuple[np.ndarray, np.ndarray]], title: str, path: Path) -> Path:
    """One scatter per split (e.g. train and val), coloured by class."""
    fig, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 5), squeeze=False)
    for ax, (name, (x, y)) in zip(axes[0], splits.items()):
        _scatter(ax, x, y, size=8)
        ax.set_title(f"{name}: {len(y)} points ({int(y.sum())} of class 1)")
        ax.set(xlabel="x0", ylabel="x1", aspect="equal")
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=f"class {i}")
        for i, c in enumerate(CLASS_COLOURS)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=2)
    _title(fig, title)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path)


def _limits(values: np.ndarray) -> tuple[float, float]:
    """The colour scale of a heat map (or of heat maps side by side): its finite values' range."""
    masked = np.ma.masked_invalid(values)
    return (float(masked.min()), float(masked.max())) if masked.count() else (0.0, 1.0)


# A heat map's cells are CELL inches each (width, height) while the panel fits in PANEL_MAX;
# a longer axis shares PANEL_MAX, its tick labels TICK inches apart at least, and a cell
# prints its value only where it is CELL_TEXT or larger. So any grid's figure is bounded.
CELL = (0.9, 0.6)
PRINTED = 12  # columns of a grid whose std is drawn beside its mean (a longer one: below)
PANEL_MAX = (11.0, 8.0)
CELL_TEXT = (0.55, 0.3)
TICK = (0.5, 0.25)
HEATMAP_WIDTH = 32.0  # inches of the whole figure: facets side by side share them


def _ticks(n: int, inches: float, spacing: float) -> list[int]:
    """The indices of an axis of n values that get a tick label: every one while they fit
    `spacing` inches apart, else every k-th (the first included)."""
    step = -(-n // max(1, int(inches / spacing)))
    return list(range(0, n, max(step, 1)))


def _heatmap(ax, values, row: Axis, col: Axis, cmap: str, notes, limits, cell) -> None:
    """One heat map; `cell`: a cell's size on the page (inches), which says whether its value
    and note fit in it."""
    masked = np.ma.masked_invalid(values)
    lo, hi = limits
    if np.isclose(lo, hi):  # one value (up to rounding): a mid colour on a readable scale
        pad = abs(lo) / 2 or 1.0
        lo, hi = lo - pad, hi + pad
    cmap = plt.get_cmap(cmap).with_extremes(bad="#dddddd")  # grey: no finished run
    image = ax.imshow(masked, cmap=cmap, vmin=lo, vmax=hi, aspect="auto", interpolation="nearest")
    plt.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    if cell[0] >= CELL_TEXT[0] and cell[1] >= CELL_TEXT[1]:
        for (i, j), value in np.ndenumerate(values):
            text = f"{value:.3g}" if np.isfinite(value) else "n/a"  # 0.0003, not 0.000
            text += notes[i][j] if notes else ""
            # White text on dark cells: the cell's colour as imshow draws it, then its luminance.
            dark = np.isfinite(value) and image.cmap(image.norm(value))[:3] @ LUMA < 0.5
            colour = "w" if dark else "k"
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color=colour)
    n_rows, n_cols = values.shape
    xs = _ticks(n_cols, cell[0] * n_cols, TICK[0])
    ys = _ticks(n_rows, cell[1] * n_rows, TICK[1])
    ax.set_xticks(xs, [str(col.values[j]) if col.key else "" for j in xs])
    ax.set_yticks(ys, [str(row.values[i]) if row.key else "" for i in ys])
    ax.set(xlabel=col.key, ylabel=row.key)


def plot_heatmaps(
    mean: np.ndarray,
    std: np.ndarray,
    row: Axis,
    col: Axis,
    metric: str,
    title: str,
    path: Path,
    notes: list | None = None,
    facets: list[str] | None = None,
) -> Path:
    """Two heat maps over row x col: the mean and the std across seeds of `metric`, a cell's
    value (and `notes[i][j]`) printed where it fits (see CELL). With `facets` (F names), mean,
    std and notes hold F grids: the means in a row of F panels, the stds in a row below."""
    if facets is None:
        mean, std, notes, facets = mean[None], std[None], [notes], [""]
    n = len(facets)
    n_rows, n_cols = len(row.values), len(col.values)
    # One grid: mean and std side by side, or the one above the other when it is long.
    shape = (2, n) if n > 1 or n_cols > PRINTED else (1, 2)
    plot_w = min(CELL[0] * n_cols, PANEL_MAX[0], HEATMAP_WIDTH / shape[1] - 2.5)
    plot_h = min(CELL[1] * n_rows, PANEL_MAX[1])
    width, height = max(5.0, plot_w + 2.5), max(3.5, plot_h + 2)
    cell = (plot_w / n_cols, plot_h / n_rows)
    fig, axes = plt.subplots(*shape, figsize=(shape[1] * width, shape[0] * height), squeeze=False)
    mean_axes, std_axes = (axes[0], axes[0][1:]) if shape == (1, 2) else (axes[0], axes[1])
    # The mean is bright where it is good (low loss, high accuracy); a large std is dark.
    good = "viridis" if "accuracy" in metric else "viridis_r"
    for panels, values, cmap, name, texts in (
        (mean_axes, mean, good, f"mean {metric} across seeds", notes),
        (std_axes, std, "magma_r", f"std of {metric} across seeds", [None] * n),
    ):
        limits = _limits(values)  # side by side, the facets share a scale
        for ax, grid, facet, text in zip(panels, values, facets, texts):
            _heatmap(ax, grid, row, col, cmap, text, limits, cell)
            ax.set_title(f"{name}, {facet}" if facet else name, fontsize=10)
    _title(fig, title)
    fig.tight_layout()
    return _save(fig, path)


def _boundary(ax: plt.Axes, b: Boundary, size: float):
    mesh = {"extent": b.extent, "origin": "lower"}  # the image's and the 0.5 line's
    style = {"cmap": "RdBu_r", "vmin": 0, "vmax": 1, "alpha": 0.55, "aspect": "auto"}
    image = ax.imshow(b.probs, interpolation="bilinear", **mesh, **style)
    ax.contour(b.probs, levels=[0.5], colors="k", linewidths=0.8, **mesh)
    _scatter(ax, b.x, b.y, size)
    ax.set(xlim=b.extent[:2], ylim=b.extent[2:])
    return image


# The boundary grid's layout, in inches: fixed, not computed by tight or constrained layout
# (which took a third to two fifths of the time of a grid of 42 to 84 panels).
PANEL, GAP_X, GAP_Y = 1.55, 0.12, 0.32  # a panel's side; gaps between panels (room for titles)
MARGINS = {"left": 0.62, "right": 0.2, "bottom": 0.5, "head": 0.3}  # head: above the titles


def _boundary_block(fig, spec, cells: list[list[Boundary | None]], row: Axis, col: Axis) -> None:
    n_rows, n_cols = len(row.values), len(col.values)
    axes = spec.subplots(squeeze=False, sharex=True, sharey=True)
    for i, j in np.ndindex(n_rows, n_cols):
        ax, cell = axes[i, j], cells[i][j]
        if cell is None:
            ax.text(0.5, 0.5, "no model", ha="center", va="center", transform=ax.transAxes)
        else:
            _boundary(ax, cell, size=2)
            ax.set_title(cell.label, fontsize=7)
        ax.tick_params(labelsize=6)
        if j == 0:
            ax.set_ylabel(row.name(row.values[i]), fontsize=8)
        if i == n_rows - 1:
            ax.set_xlabel(col.name(col.values[j]), fontsize=8)


def plot_boundary_grid(
    cells: list, row: Axis, col: Axis, title: str, path: Path, facets: list[str] | None = None
) -> Path:
    """A small decision-boundary panel per cell, laid out as the grid (None: no model); with
    `facets` (F names), `cells` holds F grids drawn side by side, each titled by its name."""
    grids, names = ([cells], [""]) if facets is None else (cells, facets)
    n_rows, n_cols = len(row.values), len(col.values)
    m = MARGINS
    panels_w = n_cols * PANEL + (n_cols - 1) * GAP_X
    block = max(6.0 / len(grids), m["left"] + panels_w + m["right"])
    width = len(grids) * block
    wrapped = "\n".join(textwrap.wrap(title, int(width * 135 / 10)))
    head = m["head"] + 0.17 * (wrapped.count("\n") + 1) + (0.3 if facets else 0.0)
    height = head + n_rows * PANEL + (n_rows - 1) * GAP_Y + m["bottom"]
    fig = plt.figure(figsize=(width, height))
    top = 1 - head / height
    for b, (grid, name) in enumerate(zip(grids, names)):
        x0 = b * block + (block - panels_w - m["left"] - m["right"]) / 2 + m["left"]
        spec = fig.add_gridspec(
            n_rows,
            n_cols,
            left=x0 / width,
            right=(x0 + panels_w) / width,
            bottom=m["bottom"] / height,
            top=top,
            wspace=GAP_X / PANEL,
            hspace=GAP_Y / PANEL,
        )
        _boundary_block(fig, spec, grid, row, col)
        if name:  # above the block's panel titles
            y = top + 0.22 / height
            x = (x0 + panels_w / 2) / width
            fig.text(x, y, name, ha="center", va="bottom", fontsize=11, fontweight="bold")
    fig.suptitle(wrapped, fontsize=10, y=1 - 0.08 / height, va="top")
    return _save(fig, path)


def plot_boundaries(boundaries: dict[str, Boundary], title: str, path: Path) -> Path:
    """Large decision-boundary panels side by side, titled by their keys (e.g. best, worst)."""
    fig, axes = plt.subplots(
        1, len(boundaries), figsize=(6.5 * len(boundaries), 6.3), squeeze=False
    )
    for ax, (name, b) in zip(axes[0], boundaries.items()):
        image = _boundary(ax, b, size=8)
        plt.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label="sigmoid output")
        ax.set_title("\n".join(textwrap.wrap(f"{name}: {b.label}", 60)), fontsize=10)
        ax.set(xlabel="x0", ylabel="x1")
    _title(fig, title)
    fig.tight_layout()
    return _save(fig, path)


@dataclass
class Curve:
    """Per epoch, the mean across seeds of the train and validation loss, and the band each
    spans (lo to hi: the lowest and the highest seed's)."""

    epochs: np.ndarray
    train_mean: np.ndarray
    train_lo: np.ndarray
    train_hi: np.ndarray
    val_mean: np.ndarray
    val_lo: np.ndarray
    val_hi: np.ndarray


def _line_panels(panels: dict[str, dict], ncols: int | None, sharex=False, size=(4.2, 3.4)):
    """A figure with a panel per key of `panels`, in rows of ncols (default up to 4): the figure,
    its axes, (rows, cols), those past the last panel off, and a colour per line label (an inner
    key), in the order the labels first appear."""
    n = len(panels)
    ncols = min(n, ncols or 4)
    nrows = -(-n // ncols)
    figsize = (max(8.0, size[0] * ncols), size[1] * nrows + 1.2)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize, squeeze=False, sharex=sharex, sharey=True
    )
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    labels = list(dict.fromkeys(k for lines in panels.values() for k in lines))
    colours = dict(zip(labels, plt.cm.viridis(np.linspace(0, 0.9, max(len(labels), 1)))))
    return fig, axes, colours


def _line_panel(ax: plt.Axes, name: str, xlabel: str) -> None:
    """What every panel of lines shows: its name as its title, a log y axis, a grid."""
    if name:
        ax.set_title(name, fontsize=10)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, which="both")


def _legend_and_save(fig, colours, key, legend_title, title, path, ncol=8, marker=None) -> Path:
    """The figure's title above its panels and its legend below them: a line per colour, then
    the `key`'s handles, in as many rows as the figure's width needs (an entry takes about 1.5
    inches); then the panels laid out in between, and the figure saved to `path`."""
    handles = [plt.Line2D([], [], color=c, marker=marker, label=str(k)) for k, c in colours.items()]
    handles += key
    ncol = max(1, min(len(handles), ncol, int(fig.get_figwidth() / 1.5)))
    rows = -(-len(handles) // ncol)
    ncol = -(-len(handles) // rows)  # rows filled evenly
    fig.legend(handles=handles, title=legend_title, loc="lower center", ncol=ncol, fontsize=8)
    lines = _title(fig, title)
    height = fig.get_figheight()
    # Inches: tight_layout leaves the suptitle room, though not from the panels' own titles.
    bottom, top = 0.3 + 0.2 * rows, 0.1 + 0.17 * lines
    fig.tight_layout(rect=(0, bottom / height, 1, 1 - top / height))
    return _save(fig, path)


def plot_curves(
    panels: dict[str, dict[str, Curve]],
    legend_title: str,
    title: str,
    path: Path,
    ncols: int | None = None,
) -> Path:
    """A panel per key of `panels`, a colour per inner key: validation loss solid, train loss
    dashed, each the mean across seeds with the seeds' range (min to max) shaded."""
    fig, axes, colours = _line_panels(panels, ncols)
    for ax, (name, curves) in zip(axes.flat, panels.items()):
        for label, c in curves.items():
            marker = "o" if len(c.epochs) == 1 else None  # one epoch: a point, no line
            for mean, lo, hi, style, width, alpha in (
                (c.val_mean, c.val_lo, c.val_hi, "-", 1.5, 0.15),
                (c.train_mean, c.train_lo, c.train_hi, "--", 1, 0.07),
            ):
                ax.plot(c.epochs, mean, color=colours[label], ls=style, lw=width, marker=marker)
                ax.fill_between(c.epochs, lo, hi, color=colours[label], alpha=alpha, linewidth=0)
        _line_panel(ax, name, "epoch")
        ax.yaxis.set_major_formatter("{x:g}")  # 0.7 rather than 7 x 10^-1
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if max(len(c.epochs) for c in curves.values()) == 1:
            ax.set_xlim(-1, 1)  # one epoch: its tick alone, not a range of fractions
    lo, hi = axes[0, 0].get_ylim()
    for ax in axes[:, 0]:
        ax.set_ylabel("loss (log scale)")
        if hi < 10 * lo:  # less than a decade: label the minor ticks too
            ax.yaxis.set_minor_formatter("{x:g}")
    key = [
        plt.Line2D([], [], color="grey", label="validation (mean)"),
        plt.Line2D([], [], color="grey", ls="--", label="train (mean)"),
        Patch(color="grey", alpha=0.25, label="shaded: lowest to highest seed"),
    ]
    return _legend_and_save(fig, colours, key, legend_title, title, path)


@dataclass
class GradNorms:
    """Per weight layer (0: the input layer ... depth: the output layer), the gradient norm
    across seeds at the first and at the last epoch."""

    first: np.ndarray
    last: np.ndarray


def plot_gradient_norms(
    panels: dict[str, dict[str, GradNorms]],
    legend_title: str,
    title: str,
    path: Path,
    ncols: int | None = None,
) -> Path:
    """A panel per key of `panels`, a colour per inner key: the gradient norm by layer on a
    shared log axis (depths compare by orders of magnitude), first epoch dashed, last solid."""
    fig, axes, colours = _line_panels(panels, ncols)
    for ax, (name, lines) in zip(axes.flat, panels.items()):
        for label, g in lines.items():
            layers = np.arange(len(g.last))
            style = {"color": colours[label], "marker": "o", "markersize": 3}
            ax.plot(layers, g.first, ls="--", lw=1, alpha=0.8, **style)
            ax.plot(layers, g.last, ls="-", lw=1.5, **style)
        _line_panel(ax, name, "layer (0: input ... depth: output)")
        ax.set_xlim(-0.5, max(len(g.last) for g in lines.values()) - 0.5)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[:, 0]:
        ax.set_ylabel("weight gradient norm (log)")
    key = [
        plt.Line2D([], [], color="grey", ls="--", label="first epoch"),
        plt.Line2D([], [], color="grey", label="last epoch"),
    ]
    return _legend_and_save(fig, colours, key, legend_title, title, path)


MARKED = 30  # points of a line drawn with full-size markers and caps


@dataclass
class Series:
    """Points of a line, in order: x (e.g. the number of parameters), and per point the mean
    across seeds and the range of the seeds (lo: the lowest seed's, hi: the highest's)."""

    x: np.ndarray
    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


def plot_params(
    panels: dict[str, dict[str, Series]],
    xlabel: str,
    ylabel: str,
    legend_title: str,
    title: str,
    path: Path,
) -> Path:
    """A panel per key of `panels` on shared log axes, a colour per inner key: its points, each
    the mean across seeds with a bar from the lowest to the highest seed (stays on a log axis)."""
    n = len(panels)
    fig, axes, colours = _line_panels(panels, n, sharex=True, size=(10.0 if n == 1 else 6.0, 5.0))
    for ax, (name, lines) in zip(axes.flat, panels.items()):
        for label, s in lines.items():
            bars = np.array([s.mean - s.lo, s.hi - s.mean])
            marks = {"ms": 4, "capsize": 2} if len(s.x) <= MARKED else {"ms": 1.5, "capsize": 0}
            ax.errorbar(s.x, s.mean, yerr=bars, color=colours[label], marker="o", lw=1.3, **marks)
        ax.set_xscale("log")
        _line_panel(ax, name, xlabel)
        ax.yaxis.set_major_formatter("{x:g}")
    axes[0, 0].set_ylabel(ylabel)
    return _legend_and_save(fig, colours, [], legend_title, title, path, ncol=4, marker="o")
