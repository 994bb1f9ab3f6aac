"""The views of a finished search, as the report read them off wandb (part 4): parallel
coordinates of all trials coloured by val_loss, parameter importance beside correlation
with val_loss, the optimisation history, the learning curves, and the best trial as a
command line.

    python -m src.search <sweep dir>     # into <sweep dir>/report/
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from omegaconf import OmegaConf

from src.config import ArgumentParser
from src.report.results import RESULT_KEYS, SweepError, collect
from src.run.files import read_metrics
from src.sweep.search import is_log_scale, search_space

METRIC = "val_loss"


CMAP = "viridis_r"  # bright = low val_loss


def trial_number(row: dict[str, Any], default: int) -> int:
    """The Hydra job number, from a `trial=<n>` job folder (else `default`)."""
    match = re.search(r"trial=(\d+)", str(row.get("job_dir", "")))
    return int(match.group(1)) if match else default


def _parameters(sweep_dir: Path, rows: list[dict[str, Any]]) -> dict[str, bool]:
    """The swept keys and whether each is searched on a log scale."""
    multirun = Path(sweep_dir) / "multirun.yaml"
    if multirun.exists():
        space = search_space(OmegaConf.load(multirun))
        found = {k: is_log_scale(o) for k, (_, o) in space.items() if any(k in r for r in rows)}
        if found:
            return found
    keys = dict.fromkeys(k for row in rows for k in row if k not in RESULT_KEYS)
    return {k: False for k in keys if len({str(row.get(k)) for row in rows}) > 1}


def _metric(row: dict[str, Any]) -> float:
    value = row.get(METRIC)
    ok = row.get("status", "ok") == "ok" and isinstance(value, (int, float))
    return float(value) if ok and math.isfinite(value) else math.inf


def _coordinates(values: list[Any], log: bool) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Values mapped to [0, 1] (log10 first when `log`; strings by order), and axis ticks."""
    if all(isinstance(v, (int, float)) for v in values):
        raw = np.array(values, dtype=float)
        x = np.log10(raw) if log else raw
    else:
        names = sorted({str(v) for v in values})
        x = np.array([names.index(str(v)) for v in values], dtype=float)
    lo, hi = float(x.min()), float(x.max())
    scaled = (x - lo) / (hi - lo) if hi > lo else np.full_like(x, 0.5)
    distinct = sorted(set(values), key=lambda v: x[values.index(v)])
    if len(distinct) <= 6:
        ticks = [(float(scaled[values.index(v)]), f"{v:.3g}" if isinstance(v, float) else str(v))
                 for v in distinct]  # fmt: skip
    else:
        points = np.linspace(lo, hi, 5)
        ticks = [(float(i / 4), f"{10**p if log else p:.3g}") for i, p in enumerate(points)]
    return scaled, ticks


def _loss_norm(losses: np.ndarray) -> Normalize:
    finite = losses[np.isfinite(losses)]
    if len(finite) == 0:
        return Normalize(0, 1)
    lo, hi = float(finite.min()), float(finite.max())
    return LogNorm(lo, hi) if lo > 0 and hi > lo else Normalize(lo, hi + 1e-12)


def parallel_coordinates(rows, params: dict[str, bool], path: Path) -> None:
    losses = np.array([_metric(r) for r in rows])
    norm = _loss_norm(losses)
    finite = np.isfinite(losses)
    columns = [_coordinates([r.get(k) for r in rows], log) for k, log in params.items()]
    metric_log = isinstance(norm, LogNorm)
    if finite.any():
        metric = _coordinates(list(losses[finite]), metric_log)
        y = np.full(len(rows), 1.08)  # diverged and failed trials above the top
        y[finite] = metric[0]
        columns.append((y, metric[1] + ([(1.08, "diverged/failed")] if not finite.all() else [])))
    names = [k + (" (log)" if log else "") for k, log in params.items()]
    names.append(METRIC + (" (log)" if metric_log else ""))
    fig = Figure(figsize=(2.2 * len(columns) + 1.5, 5), layout="constrained")
    ax = fig.add_subplot()
    cmap = fig.colorbar(ScalarMappable(norm, CMAP), ax=ax, label=METRIC).cmap
    for i in np.argsort(-np.where(finite, losses, np.inf), kind="stable"):  # best on top
        color = cmap(norm(losses[i])) if finite[i] else "lightgrey"
        ax.plot(range(len(columns)), [c[0][i] for c in columns], color=color, lw=1.2, alpha=0.8)
    for x, (_, ticks) in enumerate(columns):
        ax.axvline(x, color="black", lw=0.8)
        for y, label in ticks:
            ax.text(x - 0.03, y, label, ha="right", va="center", fontsize=8)
    ax.set_xticks(range(len(columns)), names[: len(columns)])
    ax.set_yticks([])
    ax.set_xlim(-0.4, len(columns) - 0.8)
    ax.set_ylim(-0.05, 1.13)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"{len(rows)} trials, coloured by {METRIC}")
    fig.savefig(path, dpi=120)


def _importance(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Random-forest importance of each column for y (what wandb's importance panel shows)."""
    from sklearn.ensemble import RandomForestRegressor

    forest = RandomForestRegressor(n_estimators=200, random_state=0).fit(x, y)
    return forest.feature_importances_


def importance(rows, params: dict[str, bool], path: Path) -> None:
    losses = np.array([_metric(r) for r in rows])
    ok = [r for r, loss in zip(rows, losses) if math.isfinite(loss)]
    x = np.column_stack([_coordinates([r.get(k) for r in ok], log)[0] for k, log in params.items()])
    y = losses[np.isfinite(losses)]
    enough = len(ok) >= 3 and np.ptp(y) > 0
    weights = _importance(x, y) if enough else np.zeros(len(params))
    correlation = np.array(
        [np.corrcoef(col, y)[0, 1] if enough and np.ptp(col) > 0 else 0.0 for col in x.T]
    )
    names = [k + (" (log)" if log else "") for k, log in params.items()]
    fig = Figure(figsize=(10, 1.2 + 0.5 * len(params)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    order = np.argsort(weights)
    left.barh(np.array(names)[order], weights[order], color="tab:blue")
    left.set_xlabel("importance (random forest, mean decrease in impurity)")
    colors = ["tab:green" if c < 0 else "tab:red" for c in correlation[order]]
    right.barh(np.array(names)[order], correlation[order], color=colors)
    right.axvline(0, color="black", lw=0.8)
    right.set_xlim(-1, 1)
    right.set_xlabel(f"correlation with {METRIC} (of log10 where the axis is log)")
    note = "" if enough else " (too few finished trials to tell)"
    fig.suptitle(f"Parameters and {METRIC}: {len(ok)} finished trials{note}")
    fig.savefig(path, dpi=120)


def history(rows, path: Path) -> None:
    trials = np.array([trial_number(r, i) for i, r in enumerate(rows)])
    losses = np.array([_metric(r) for r in rows])
    finite = np.isfinite(losses)
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.scatter(trials[finite], losses[finite], color="tab:blue", s=18, label=METRIC)
    if finite.any():
        ax.step(trials, np.minimum.accumulate(losses), where="post", color="tab:orange",
                label="best so far")  # fmt: skip
        ax.set_yscale("log" if losses[finite].min() > 0 else "linear")
    if not finite.all():
        ax.scatter(trials[~finite], np.full((~finite).sum(), 0.97), marker="x", color="red",
                   transform=ax.get_xaxis_transform(), label="diverged/failed")  # fmt: skip
    ax.set_xlabel("trial")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(METRIC)
    ax.legend()
    ax.set_title("Optimisation history")
    fig.savefig(path, dpi=120)


def learning_curves(sweep_dir: Path, rows, path: Path) -> None:
    losses = np.array([_metric(r) for r in rows])
    norm = _loss_norm(losses)
    panels = [("train_loss", True), ("val_loss", True), ("val_accuracy", False)]
    fig = Figure(figsize=(15, 4.5), layout="constrained")
    axes = fig.subplots(1, 3)
    cmap = fig.colorbar(ScalarMappable(norm, CMAP), ax=axes, label=f"final {METRIC}").cmap
    for i in np.argsort(-np.where(np.isfinite(losses), losses, np.inf), kind="stable"):
        epochs = rows[i].get("history")
        if epochs is None:
            epochs = (read_metrics(Path(sweep_dir) / rows[i]["job_dir"]) or {}).get("history")
        color = cmap(norm(losses[i])) if np.isfinite(losses[i]) else "lightgrey"
        for ax, (key, _) in zip(axes, panels):
            values = [e.get(key, math.nan) for e in epochs or []]
            values = [v if v is not None and math.isfinite(v) else math.nan for v in values]
            ax.plot([e["epoch"] for e in epochs or []], values, color=color, lw=1, alpha=0.8)
    for ax, (key, log) in zip(axes, panels):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(key)
        if log:
            ax.set_yscale("log")
    fig.suptitle(f"Learning curves of {len(rows)} trials")
    fig.savefig(path, dpi=120)


def best_trial(sweep_dir: Path, rows, params: dict[str, bool]) -> str:
    """The best finished trial: its metrics, parameters and a command line that re-runs it."""
    i = min(range(len(rows)), key=lambda j: _metric(rows[j]))
    row = rows[i]
    overrides_file = Path(sweep_dir) / str(row.get("job_dir")) / ".hydra" / "overrides.yaml"
    if overrides_file.exists():
        overrides = list(OmegaConf.load(overrides_file))
    else:
        overrides = [f"{k}={row[k]}" for k in params]
    scores = ", ".join(f"{k}={row[k]:.4g}" for k in (METRIC, "val_accuracy") if k in row)
    return "\n".join(
        [
            f"best trial: {row.get('job_dir', i)} ({scores})",
            *[f"  {k} = {row.get(k)}" for k in params],
            "re-run it:",
            "  python -m src.train " + " ".join(shlex.quote(o) for o in overrides),
            "",
        ]
    )


def write_search_views(sweep_dir: Path, rows: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """The comparison views of a search's trials as PNGs (and best_trial.txt) in out_dir."""
    sweep_dir, out_dir = Path(sweep_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not rows:
        return []
    rows = sorted(rows, key=lambda r: trial_number(r, 0))
    params = _parameters(sweep_dir, rows)
    paths = []
    if params:
        parallel_coordinates(rows, params, out_dir / "parallel_coordinates.png")
        importance(rows, params, out_dir / "importance.png")
        paths += [out_dir / "parallel_coordinates.png", out_dir / "importance.png"]
    history(rows, out_dir / "history.png")
    learning_curves(sweep_dir, rows, out_dir / "trial_curves.png")
    paths += [out_dir / "history.png", out_dir / "trial_curves.png"]
    if any(math.isfinite(_metric(r)) for r in rows):
        text = best_trial(sweep_dir, rows, params)
        print(text, end="")
        (out_dir / "best_trial.txt").write_text(text)
        paths.append(out_dir / "best_trial.txt")
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m src.search", description=__doc__.split("\n")[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="the folder of a search (hparams_search=bayes)"
    )
    args = parser.parse_args(argv)
    try:
        rows = collect(args.sweep_dir)
        if not rows:
            raise SweepError(f"{args.sweep_dir}: no trials yet")
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for written in write_search_views(args.sweep_dir, rows, args.sweep_dir / "report"):
        print(written)
    return 0
