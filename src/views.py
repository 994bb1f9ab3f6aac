"""The report's views: each draws figures of a sweep's Report (src/report.py) and returns
their paths. Kept apart from src/report.py because they need torch and matplotlib: a sweep's
main process can write its report through its workers without importing either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from src import figures
from src.generators import make_splits
from src.nets import build_mlp
from src.report import Group, Report

MESH = 120  # decision boundaries: points per side of the evaluation mesh


def data_splits(r: Report, data: dict[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The data set a job trained on, regenerated from its config's data section."""
    key = tuple(sorted(data.items()))
    if key not in r.splits_cache:
        args = {k: data[k] for k in ("name", "n_train", "n_val", "n_test", "noise", "seed")}
        splits = make_splits(**args).items()
        r.splits_cache[key] = {s: (x.numpy(), y.numpy()) for s, (x, y) in splits}
    return r.splits_cache[key]


def boundary(r: Report, g: Group, label: str) -> figures.Boundary:
    """The saved model's sigmoid output on a mesh over its data, validation points on top."""
    run = r.run_of(g)
    saved = torch.load(r.sweep_dir / run["job_dir"] / "model.pt", weights_only=True)
    h = saved["hparams"]
    net = build_mlp(h["depth"], h["width"], h["activation"], h.get("in_features", 2))
    net.load_state_dict(saved["state_dict"])
    splits = data_splits(r, r.records[run["job_dir"]]["config"]["data"])
    points = np.concatenate([splits["train"][0], splits["val"][0]])
    lo, hi = points.min(axis=0), points.max(axis=0)
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    xs, ys = np.meshgrid(np.linspace(lo[0], hi[0], MESH), np.linspace(lo[1], hi[1], MESH))
    mesh = torch.tensor(np.stack([xs.ravel(), ys.ravel()], axis=1), dtype=torch.float32)
    with torch.no_grad():
        probs = torch.sigmoid(net(mesh)).reshape(MESH, MESH).numpy()
    extent = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
    return figures.Boundary(probs, extent, *splits["val"], f"{label} seed={run.get('seed')}")


def curve(histories: list[list[dict[str, float]]]) -> figures.Curve:
    """Per epoch, the mean across runs and the band from the lowest to the highest run (a run
    that stopped early counts until it stops). The loss axis is logarithmic: a band of mean ±
    std would fall below zero, off the axis, wherever the seeds spread widely; min-max stays
    positive and holds every run."""
    n = max(len(h) for h in histories)
    table = {k: np.full((len(histories), n), np.nan) for k in ("train_loss", "val_loss")}
    for i, history in enumerate(histories):
        for j, record in enumerate(history):
            for k in table:
                table[k][i, j] = record[k]
    mean = {k: np.nanmean(v, axis=0) for k, v in table.items()}
    lo = {k: np.nanmin(v, axis=0) for k, v in table.items()}
    hi = {k: np.nanmax(v, axis=0) for k, v in table.items()}
    return figures.Curve(
        np.arange(n),
        mean["train_loss"],
        lo["train_loss"],
        hi["train_loss"],
        mean["val_loss"],
        lo["val_loss"],
        hi["val_loss"],
    )


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
    tuned = [k for k in r.swept if k not in (r.row.key, r.col.key)]

    def note(g: Group | None) -> str:
        if g is None:
            return ""
        text = f"\n{len(g.ok)}/{n_seeds} seeds" if len(g.ok) < n_seeds else ""
        return text + "".join(f"\n{k.split('.')[-1]}={g.config.get(k)}" for k in tuned)

    paths = []
    notes = [[note(g) for g in line] for line in r.cells]
    for metric in ("val_loss", "val_accuracy"):
        mean = np.array([[g.mean(metric) if g else np.nan for g in line] for line in r.cells])
        std = np.array([[g.std(metric) if g else np.nan for g in line] for line in r.cells])
        grid = " x ".join(k for k in (r.row.key, r.col.key) if k) or "all jobs"
        title = f"{metric} over {grid} ({r.context})"
        path = r.out / f"heatmap_{metric}.png"
        paths.append(figures.plot_heatmaps(mean, std, r.row, r.col, metric, title, path, notes))
    return paths


def boundary_figures(r: Report) -> list[Path]:
    grid = [
        [boundary(r, g, f"val_loss {r.run_of(g)['val_loss']:.3f}") if g else None for g in line]
        for line in r.cells
    ]
    title = (
        f"decision boundaries (colour: sigmoid output, blue 0 to red 1; line: 0.5), "
        f"seed {r.seed}, validation points ({r.context})"
    )
    paths = [figures.plot_boundary_grid(grid, r.row, r.col, title, r.out / "boundaries.png")]
    ranked = r.ranked
    big = {
        name: boundary(r, g, f"{g.describe(r.swept)}, mean val_loss {g.mean('val_loss'):.3f},")
        for name, g in (("best", ranked[0]), ("worst", ranked[-1]))
    }
    title = f"best and worst configuration by mean val_loss ({r.context})"
    paths.append(figures.plot_boundaries(big, title, r.out / "boundaries_best_worst.png"))
    return paths


def curve_figures(r: Report) -> list[Path]:
    panels = {}
    for value, line in zip(r.row.values, r.cells):
        curves = {
            r.col.name(c): curve([r.records[x["job_dir"]]["history"] for x in g.ok])
            for c, g in zip(r.col.values, line)
            if g
        }
        if curves:
            panels[r.row.name(value)] = curves
    band = "shaded from the lowest to the highest seed"
    title = f"learning curves, mean across seeds, {band} ({r.context})"
    return [figures.plot_curves(panels, r.col.key, title, r.out / "learning_curves.png")]


def search_figures(r: Report) -> list[Path]:
    """A hyperparameter search's own views (src/search.py), when the sweep was a search."""
    multirun = r.sweep_dir / "multirun.yaml"
    if (
        not multirun.exists()
        or OmegaConf.select(OmegaConf.load(multirun), "hydra.sweeper.n_trials") is None
    ):
        return []
    from src.search import write_search_views

    written = write_search_views(r.sweep_dir, r.results, r.out)
    return [path for path in written if path.suffix == ".png"]
