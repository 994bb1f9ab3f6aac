"""A search's report, drawn from its Optuna study: `<sweep>/results.csv` and `<sweep>/report/`.

The best trial with the command that retrains it, a table of the best trials, parallel
coordinates, parameter importance beside correlation, the optimisation history, the trials'
learning curves and, when the search pruned, each trial's per-epoch values.
"""

from __future__ import annotations

import html
import math
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.errors import ArgumentParser
from src.report import page
from src.report.results import REPORT_DIR, SweepError, collect, tally, write_results
from src.run.files import member_dir, read_metrics
from src.run.schema import SEED_KEY, STACK_KEY
from src.sweep.lock import holder
from src.sweep.progress import override_key

TOP = 10  # trials in the page's table
TARGET = "mean val_loss"  # a trial's value: the mean of its seeds' final val_loss
CAPTIONS = {  # figure file stem: its heading on the page
    "parallel_coordinates": "Every trial's parameters and value",
    "importance": "Which parameters matter, and in which direction",
    "history": "The search's progress",
    "trial_curves": "Learning curves of the trials",
    "intermediate_values": "Each trial's value by epoch (what pruning compares)",
}
PRE = " pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}"  # the best trial's command


def load_study(sweep_dir: Path) -> Any:
    """The study of a search's folder, from the storage its multirun.yaml names."""
    import optuna

    from src.sweep.space import STUDY_FILE, is_search, study_storage

    multirun = Path(sweep_dir) / "multirun.yaml"
    if not Path(sweep_dir).is_dir():
        raise SweepError(f"{sweep_dir} is not a folder")
    if not multirun.is_file():
        raise SweepError(f"{sweep_dir} is not a sweep (no multirun.yaml)")
    config = OmegaConf.load(multirun)
    sweeper = config.hydra.sweeper
    if not is_search(sweeper):
        kind = sweeper.get("kind")
        what = f"its sweeper's kind is {kind}" if kind else "its sweeper has no kind"
        raise SweepError(f"{sweep_dir} is not a search ({what}): python -m src.report")
    if sweeper.storage is None and not (Path(sweep_dir) / STUDY_FILE).is_file():
        raise SweepError(f"{sweep_dir}: its study cannot be loaded (no {STUDY_FILE} yet)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(
            study_name=sweeper.study_name, storage=study_storage(sweeper.storage, sweep_dir)
        )
    except Exception as error:
        reason = " ".join(str(error).split()) or type(error).__name__
        raise SweepError(f"{sweep_dir}: its study cannot be loaded ({reason})") from None


def completed(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if math.isfinite(t.value)
    ]


def retrain_command(sweep_dir: Path, trial: Any) -> str:
    """The command that trains a trial's configuration again, its seeds as one stack: the
    trial's overrides, the epochs the search trained for (hparams_search sets them) and seeds."""
    seeds = trial.user_attrs.get(STACK_KEY, [0])
    seed_dir = member_dir(Path(sweep_dir) / f"trial={trial.number}", seeds[0])
    overrides = [str(o) for o in OmegaConf.load(seed_dir / ".hydra" / "overrides.yaml")]
    config = OmegaConf.load(seed_dir / ".hydra" / "config.yaml")
    keep = [o for o in overrides if override_key(o) not in (SEED_KEY, STACK_KEY)]
    if not any(o.startswith("trainer.max_epochs=") for o in keep):
        keep.append(f"trainer.max_epochs={config.trainer.max_epochs}")
    keep.append(f"{STACK_KEY}=[{','.join(map(str, seeds))}]")
    return "python -m src.train " + " ".join(shlex.quote(o) for o in keep)


def seed_spread(trial: Any) -> str:
    values = [v for v in trial.user_attrs.get("seed_values", {}).values() if v is not None]
    if len(values) < 2:
        return f"{trial.value:.4g}"
    return f"{trial.value:.4g} ± {statistics.stdev(values):.2g} ({len(values)} seeds)"


def best_trial_text(sweep_dir: Path, study: Any) -> str:
    trials = completed(study)
    if not trials:
        return "no trial has completed with a finite value yet\n"
    best = min(trials, key=lambda t: t.value)
    per_seed = ", ".join(
        f"seed={s}: {v:.4g}" for s, v in best.user_attrs.get("seed_values", {}).items()
    )
    lines = [
        f"best trial: {best.number}, mean val_loss {seed_spread(best)}",
        f"  per seed: {per_seed}",
        *[f"  {k} = {v}" for k, v in best.params.items()],
        "retrain it:",
        "  " + retrain_command(sweep_dir, best),
    ]
    return "\n".join(lines) + "\n"


# Optuna's importance says how much a parameter matters, not in which direction; wandb's
# panel, which the report read, shows the correlation beside it, so this view does too.
def correlations(trials: list[Any], study: Any) -> dict[str, float]:
    """Pearson correlation of each parameter (log10 on a log scale, a choice by its index)
    with the trials' values."""
    import numpy as np

    result = {}
    values = np.array([t.value for t in trials])
    for name in study.best_trial.params:
        dist = next(t.distributions[name] for t in trials if name in t.distributions)
        params = [t.params.get(name) for t in trials]
        if hasattr(dist, "choices"):
            column = np.array([float(dist.choices.index(v)) for v in params])
        else:
            log = getattr(dist, "log", False)
            column = np.array([math.log10(v) if log else float(v) for v in params])
        ok = np.ptp(column) > 0 and np.ptp(values) > 0
        result[name] = float(np.corrcoef(column, values)[0, 1]) if ok else 0.0
    return result


def importance_figure(study: Any) -> Any:
    import optuna
    from matplotlib.figure import Figure

    trials = completed(study)
    if len(trials) < 2:
        return None
    importances = optuna.importance.get_param_importances(study)
    corr = correlations(trials, study)
    names = sorted(importances, key=importances.get)
    fig = Figure(figsize=(10, 1.4 + 0.5 * len(names)), layout="constrained")
    left, right = fig.subplots(1, 2, sharey=True)
    left.barh(names, [importances[n] for n in names], color="tab:blue")
    left.set_xlabel("importance (Optuna's fANOVA)")
    right.barh(names, [corr[n] for n in names],
               color=["tab:green" if corr[n] < 0 else "tab:red" for n in names])  # fmt: skip
    right.axvline(0, color="black", lw=0.8)
    right.set_xlim(-1, 1)
    right.set_xlabel("correlation with mean val_loss (log10 on log-scale axes)")
    fig.suptitle(f"{len(trials)} completed trials")
    return fig


def optuna_figure(plot: str, study: Any, **args: Any) -> Any:
    """One of optuna.visualization.matplotlib's views."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as views
    from optuna.exceptions import ExperimentalWarning

    with warnings.catch_warnings():  # marked experimental; a one-value axis warns
        warnings.simplefilter("ignore", ExperimentalWarning)
        warnings.simplefilter("ignore", UserWarning)
        ax = getattr(views, plot)(study, **args)
    figure = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    figure.set_size_inches(max(figure.get_size_inches()[0], 9), 5)
    figure.tight_layout()
    plt.close(figure)  # out of pyplot's registry; the Figure itself stays usable
    return figure


def curves_figure(sweep_dir: Path, study: Any) -> Any:
    """Each trial's mean val_loss per epoch over its seeds, coloured by its value."""
    import numpy as np
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure

    trials = completed(study)
    if not trials:
        return None
    values = [t.value for t in trials]
    positive = min(values) > 0 and max(values) > min(values)
    norm = LogNorm(min(values), max(values)) if positive else None
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    cmap = fig.colorbar(ScalarMappable(norm, "viridis_r"), ax=axes, label="trial value").cmap
    for trial in sorted(trials, key=lambda t: -t.value):  # best drawn last, on top
        histories = []
        for seed in trial.user_attrs.get(STACK_KEY, []):
            record = read_metrics(member_dir(Path(sweep_dir) / f"trial={trial.number}", seed))
            if record and record.get("history"):
                histories.append(record["history"])
        if not histories:
            continue
        epochs = min(len(h) for h in histories)
        colour = cmap(norm(trial.value)) if norm else "tab:blue"
        for ax, key in zip(axes, ("train_loss", "val_loss")):
            mean = np.mean([[e[key] for e in h[:epochs]] for h in histories], axis=0)
            ax.plot(range(epochs), mean, color=colour, lw=1, alpha=0.8)
    for ax, key in zip(axes, ("train_loss", "val_loss")):
        ax.set(xlabel="epoch", ylabel=f"{key} (mean of the trial's seeds)", yscale="log")
    fig.suptitle(f"Learning curves of {len(trials)} completed trials")
    return fig


def trial_table(study: Any) -> str:
    """The best TOP trials, then how many trials ended in each state."""
    trials = sorted(completed(study), key=lambda t: t.value)[:TOP]
    names = list(study.best_trial.params) if trials else []
    rows = [[t.number, seed_spread(t), *(_short(t.params.get(n)) for n in names)] for t in trials]
    count = tally(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return f"<p>{count}.</p>\n" + page.table(["trial", "mean val_loss", *names], rows)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def write_search_report(sweep_dir: Path) -> Path:
    """results.csv, the search's figures, best_trial.txt and index.html; the report folder."""
    sweep_dir = Path(sweep_dir)
    study = load_study(sweep_dir)
    write_results(sweep_dir, collect(sweep_dir))
    out = sweep_dir / REPORT_DIR
    out.mkdir(exist_ok=True)
    for stale in out.glob("*.png"):
        stale.unlink()
    drawn = {}
    if completed(study):
        if study.best_trial.params:
            drawn["parallel_coordinates"] = optuna_figure(
                "plot_parallel_coordinate", study, target_name=TARGET
            )
            drawn["importance"] = importance_figure(study)
        drawn["history"] = optuna_figure("plot_optimization_history", study, target_name=TARGET)
        drawn["trial_curves"] = curves_figure(sweep_dir, study)
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        drawn["intermediate_values"] = optuna_figure("plot_intermediate_values", study)
    figures = []
    for name, figure in drawn.items():
        if figure is not None:
            figure.savefig(out / f"{name}.png", dpi=110)
            figures.append(out / f"{name}.png")
    best = best_trial_text(sweep_dir, study)
    (out / "best_trial.txt").write_text(best)
    write_page(sweep_dir, study, best, figures)
    return out


def write_page(sweep_dir: Path, study: Any, best: str, figures: list[Path]) -> Path:
    name, study_name = html.escape(page.sweep_name(sweep_dir)), html.escape(study.study_name)
    body = f"""<p>Study <b>{study_name}</b>: each trial trains its seeds as one stack
and is scored by their mean val_loss. Every run: <a href="../results.csv">results.csv</a>.</p>
<h2>The best trial</h2>
<pre>{html.escape(best)}</pre>
<h2>The best trials</h2>
{trial_table(study)}
{page.images(figures, CAPTIONS)}"""
    path, title = sweep_dir / REPORT_DIR / "index.html", f"Search report: {name}"
    return page.write(path, f"Search: {name}", title, body, 1200, PRE)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m src.report", description=__doc__.split("\n")[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="the folder of a search (hparams_search=bayes)"
    )
    args = parser.parse_args(argv)
    running = holder(args.sweep_dir)
    if running:
        print(f"the search is running ({running}): drawing what has finished", file=sys.stderr)
    try:
        out = write_search_report(args.sweep_dir)
    except SweepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print((out / "best_trial.txt").read_text(), end="")
    print(f"report: {out / 'index.html'}")
    return 0
