"""The Claims section's figures (src/report/claims.py), drawn from the runs the claims read.

claims_grid.png: the report's grid at epoch 25 as the claims read it (tanh's mean and std of
val_loss, relu's mean and its share of units that never activate on the validation set);
claims_settings.png: val_loss per epoch of every optimizer x activation x learning rate at
the configurations of conf/experiment/claims.yaml, the median over seeds. A figure with
nothing to draw is not drawn.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: render straight to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from src.report import claims as c  # noqa: E402
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


def _cell_means(runs: list[c.Run], reading, activation: str, how) -> np.ndarray:
    """(depths, widths): `how` of the cell's readings over seeds; NaN where it has none."""
    grid = np.full((len(c.DEPTHS), len(c.WIDTHS)), np.nan)
    for i, d in enumerate(c.DEPTHS):
        for j, w in enumerate(c.WIDTHS):
            setting = c.spec(d, w, activation=activation)
            values = [reading(r) for r in runs if r.setting == setting]
            values = [v for v in values if v is not None and np.isfinite(v)]
            if len(values) >= (2 if how is np.std else 1):
                grid[i, j] = how(values, ddof=1) if how is np.std else how(values)
    return grid


def grid_figure(runs: list[c.Run], path: Path) -> Path | None:
    loss = c.loss_at()
    panels = [
        ("tanh: mean val_loss", _cell_means(runs, loss, "tanh", np.mean), True),
        ("tanh: std of val_loss over seeds", _cell_means(runs, loss, "tanh", np.std), True),
        ("relu: mean val_loss", _cell_means(runs, loss, "relu", np.mean), True),
        (
            "relu: share of units never active",
            _cell_means(runs, c.dead_units, "relu", np.mean),
            False,
        ),
    ]
    panels = [p for p in panels if np.isfinite(p[1]).any()]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    for ax, (title, grid, log) in zip(axes[0], panels):
        shown = np.log10(np.clip(grid, 1e-6, None)) if log else grid
        image = ax.imshow(shown, cmap="viridis_r" if log else "magma_r", aspect="auto")
        fig.colorbar(image, ax=ax, shrink=0.8, label="log10" if log else "share")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if np.isfinite(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.2g}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(c.WIDTHS)), c.WIDTHS)
        ax.set_yticks(range(len(c.DEPTHS)), c.DEPTHS)
        ax.set_xlabel("width")
        ax.set_ylabel("depth")
        ax.set_title(title, fontsize=10)
    fig.suptitle("The report's grid at epoch 25 (Adam, lr 0.01), as the claims read it")
    fig.tight_layout()
    return _save(fig, path)


def settings_figure(runs: list[c.Run], path: Path) -> Path | None:
    long = [r for r in runs if r.record is not None and len(r.record["history"]) >= c.LONG_EPOCHS]
    configs = [cfg for cfg in c.CONFIGS if any(r.setting[:2] == cfg for r in long)]
    if not configs:
        return None
    fig, axes = plt.subplots(
        len(c.OPTIMIZERS), len(configs), figsize=(4 * len(configs), 7), squeeze=False, sharey=True
    )
    colours = dict(zip(c.LRS, ("#1b9e77", "#d95f02", "#7570b3")))
    for row, optimizer in enumerate(c.OPTIMIZERS):
        for col, (depth, width) in enumerate(configs):
            ax = axes[row][col]
            for activation, style in zip(c.ACTIVATIONS, ("-", "--")):
                for lr in c.LRS:
                    setting = c.spec(
                        depth, width, optimizer=optimizer, activation=activation, lr=lr
                    )
                    curves = [
                        [e["val_loss"] for e in r.record["history"][: c.LONG_EPOCHS]]
                        for r in long
                        if r.setting == setting
                    ]
                    if curves:
                        median = np.nanmedian(np.array(curves, dtype=float), axis=0)
                        label = f"{activation}, lr {lr:g}"
                        ax.plot(
                            range(1, len(median) + 1), median, style, color=colours[lr], label=label
                        )
            ax.axvline(c.REPORT_EPOCHS, color="grey", lw=0.8, ls=":")
            ax.set_yscale("log")
            ax.set_title(f"{optimizer}, depth {depth}, width {width}", fontsize=10)
            ax.set_xlabel("epoch")
            if col == 0:
                ax.set_ylabel("val_loss (median over seeds)")
    axes[0][0].legend(fontsize=7)
    fig.suptitle("Optimizer x activation x learning rate, 100 epochs (dotted: epoch 25)")
    fig.tight_layout()
    return _save(fig, path)


def draw_claim_figures(sweep_dir: Path, out: Path) -> list[Path]:
    """Draw the figures the claims name into `out` (the report folder); the ones drawn."""
    runs = c.load_runs(sweep_dir)
    drawn = [
        grid_figure(runs, Path(out) / c.GRID_FIGURE),
        settings_figure(runs, Path(out) / c.SETTINGS_FIGURE),
    ]
    return [p for p in drawn if p is not None]
