"""The Claims section's figures, drawn from the arrays src/report/claims.py reads from the runs:
claims_grid.png (the report's grid at epoch 25, as the claims read it) and claims_settings.png
(val_loss per epoch of every optimizer x activation x lr at the claims' configurations).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render straight to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from src.report.results import writing  # noqa: E402

DPI = 100


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=DPI)
    finally:
        plt.close(fig)
    return path


def grid_figure(panels: list[tuple[str, np.ndarray, bool]], depths, widths, path: Path) -> Path:
    """One heat map per panel (title, (depths, widths) values with NaN where none, log scale)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (title, grid, log) in zip(axes[0], panels):
        shown = np.log10(np.clip(grid, 1e-6, None)) if log else grid
        image = ax.imshow(shown, cmap="viridis_r" if log else "magma_r", aspect="auto")
        fig.colorbar(image, ax=ax, shrink=0.8, label="log10" if log else "share")
        low, high = np.nanmin(shown), np.nanmax(shown)
        for i, j in zip(*np.nonzero(np.isfinite(grid))):  # each cell with a value, row by row
            dark = (shown[i, j] - low) > 0.5 * (high - low)  # the colour map's dark end
            colour = "white" if dark else "black"
            ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=7, color=colour)
        ax.set_xticks(range(len(widths)), widths)
        ax.set_yticks(range(len(depths)), depths)
        ax.set_xlabel("width")
        ax.set_ylabel("depth")
        ax.set_title(title, fontsize=10)
    fig.suptitle("The report's grid at epoch 25 (Adam, lr 0.01), as the claims read it")
    fig.tight_layout()
    return _save(fig, path)


def settings_figure(
    curves: dict[tuple[str, tuple[int, int]], dict[tuple[str, float], np.ndarray]],
    mark: int,
    path: Path,
) -> Path:
    """A panel per (optimizer, (depth, width)), rows by optimizer: a val_loss curve per
    (activation, lr), tanh solid, relu dashed; a dotted line at epoch `mark`."""
    optimizers = list(dict.fromkeys(k[0] for k in curves))
    configs = list(dict.fromkeys(k[1] for k in curves))
    fig, axes = plt.subplots(
        len(optimizers),
        len(configs),
        figsize=(4 * len(configs), 3.5 * len(optimizers)),
        squeeze=False,
        sharey=True,
    )
    lrs = sorted({lr for lines in curves.values() for _, lr in lines})
    colours = dict(zip(lrs, ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")))
    for row, optimizer in enumerate(optimizers):
        for col, (depth, width) in enumerate(configs):
            ax = axes[row][col]
            for (activation, lr), curve in curves.get((optimizer, (depth, width)), {}).items():
                style = "-" if activation == "tanh" else "--"
                label = f"{activation}, lr {lr:g}"
                ax.plot(range(1, len(curve) + 1), curve, style, color=colours.get(lr), label=label)
            ax.axvline(mark, color="grey", lw=0.8, ls=":")
            ax.set_yscale("log")
            ax.set_title(f"{optimizer}, depth {depth}, width {width}", fontsize=10)
            ax.set_xlabel("epoch")
            if col == 0:
                ax.set_ylabel("val_loss (median over seeds)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"Optimizer x activation x learning rate (dotted: epoch {mark})")
    fig.tight_layout()
    return _save(fig, path)
