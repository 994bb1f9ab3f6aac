"""The course report's conclusions (part 3.3) tested against a sweep: claims.csv and the Claims
section at the top of its report, one line per claim at the end of the sweep.

    python -m src.report.claims multirun/<date>/<time>    # any sweep, its results.csv at least
    python -m src.train -m experiment=claims               # the sweep that tests every claim

A claim reads the finished runs of the report's settings (FIXED, REPORT but for what it varies)
at epoch 25 unless it says otherwise, from results.csv or the runs' metrics.json, over the seeds
every setting it reads has (so settings stay paired); src/report/evidence.py decides it. A claim
whose runs the sweep lacks is "not tested by this sweep", with the overrides that train them.
"""

from __future__ import annotations

import csv
import html
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from itertools import chain, product
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import ArgumentParser
from src.report.evidence import RULE, UNDECIDED, Interval, improvement_probability, interval
from src.report.evidence import verdict as decide
from src.report.results import (
    REPORT_DIR,
    RESULT_KEYS,
    RESULTS_FILE,
    SweepError,
    parse_value,
    writing,
)
from src.run.files import read_metrics
from src.run.schema import SEED_KEY

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # the repository
CLAIMS_FILE = "claims.csv"
REPORT_EPOCHS = 25  # the report's training length: claims read the runs at this epoch
LONG_EPOCHS = 100  # where a claim is about training for longer
DEPTHS, WIDTHS = (0, 1, 2, 3, 5, 10, 20), (1, 2, 3, 5, 10, 20)
REGION = list(product((2, 3, 5), (5, 10, 20)))  # the report's best region (depth, width)
DEEP, HIDDEN = list(product((10, 20), (5, 10, 20))), list(product(DEPTHS[1:], WIDTHS))
# The report's chosen configuration and three of its best region (conf/experiment/claims.yaml).
CONFIGS = [(2, 10), (2, 5), (3, 10), (5, 20)]
OPTIMIZERS, ACTIVATIONS, LRS = ("adam", "sgd"), ("tanh", "relu"), (0.001, 0.01, 0.1)
# The settings a claim compares; every other setting must be the project's default.
VARIED = ("model.depth", "model.width", "model.activation", "model.optimizer", "model.lr")
REPORT = {"model.activation": "tanh", "model.optimizer": "adam", "model.lr": 0.01}
FIXED = {
    "data.name": "xor",
    "data.n_train": 2500,
    "data.n_val": 500,
    "data.noise": 0.1,
    "data.batch_size": 128,
    "data.seed": 42,
    "model.residual": False,
    "model.norm": "none",
    "model.init": "default",
}
CONVERGED = 0.01  # claim 8: val_loss a run must reach to have converged
EXPERIMENT = "experiment=claims"
RESIDUAL_REPORT = "multirun/reference-residual/report/index.html"
GRID_FIGURE, SETTINGS_FIGURE = "claims_grid.png", "claims_settings.png"


# ---- the runs


@dataclass
class Run:
    setting: tuple  # its values of VARIED
    seed: int
    row: dict[str, Any]  # its results.csv row
    record: dict[str, Any] | None  # its metrics.json, when the sweep has it

    def at(self, epoch: int) -> dict[str, Any] | None:
        """Its metrics at the end of `epoch` (1-based); None if neither its history nor its final
        metrics (a run of exactly that many epochs) say."""
        if self.record is not None and len(self.record["history"]) >= epoch:
            return self.record["history"][epoch - 1]
        if int(self.row["epochs"]) == epoch:
            return self.row
        return None


def _number(text: str) -> Any:
    if text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def read_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """results.csv's rows: override columns as Hydra reads them, metrics as numbers."""
    with (Path(sweep_dir) / RESULTS_FILE).open(newline="") as f:
        return [
            {
                k: (_number(v) if k in RESULT_KEYS else parse_value(v))
                if k not in ("status", "job_dir", "error", "wandb_id", "wandb_dir")
                else v
                for k, v in row.items()
            }
            for row in csv.DictReader(f)
        ]


def _setting(row: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """Every setting a claim looks at: the record's config, else the defaults with the row's
    overrides (results.csv without its job folders)."""
    if record is not None and isinstance(record.get("config"), dict):
        config = record["config"]
        return {
            key: config.get(key.split(".")[0], {}).get(key.split(".")[1])
            for key in (*VARIED, *FIXED)
        }
    setting = {**FIXED, **REPORT, "model.depth": None, "model.width": None}
    for key, value in row.items():
        if key == "data":  # the group override data=<name>
            setting["data.name"] = value
        elif key in setting:
            setting[key] = value
    return setting


def load_runs(sweep_dir: Path) -> list[Run]:
    """The sweep's finished runs of the report's problem (FIXED), with their records."""
    runs = []
    for row in read_results(sweep_dir):
        if row["status"] != "ok" or row.get(SEED_KEY) is None:
            continue
        record = read_metrics(Path(sweep_dir) / row["job_dir"]) if row["job_dir"] else None
        record = record if record is not None and record.get("status") == "ok" else None
        setting = _setting(row, record)
        if all(setting[k] == v for k, v in FIXED.items()):
            runs.append(Run(tuple(setting[k] for k in VARIED), int(row[SEED_KEY]), row, record))
    return runs


# ---- what a claim reads


Reading = Callable[[Run], "float | None"]


def reading(epoch: int, needs_record: bool = False) -> Callable[[Reading], Reading]:
    """Marks a function of a run as a reading: the epoch its runs must reach, and whether it
    needs their metrics.json (what a claim without runs says is missing)."""

    def mark(read: Reading) -> Reading:
        read.epoch, read.needs_record = epoch, needs_record  # type: ignore[attr-defined]
        return read

    return mark


def loss_at(epoch: int = REPORT_EPOCHS, gap: bool = False) -> Reading:
    """val_loss at the end of the epoch; `gap`: val_loss - train_loss, over-fitting when
    positive."""

    @reading(epoch)
    def read(run: Run) -> float | None:
        found = run.at(epoch)
        if found is None:
            return None
        return found["val_loss"] - found["train_loss"] if gap else found.get("val_loss")

    return read


@reading(LONG_EPOCHS, needs_record=True)
def epochs_to_converge(run: Run) -> float | None:
    """The first epoch whose val_loss is at most CONVERGED; never: its epochs + 1."""
    if run.record is None or len(run.record["history"]) < LONG_EPOCHS:
        return None
    history = run.record["history"][:LONG_EPOCHS]
    return next(
        (i + 1 for i, e in enumerate(history) if e["val_loss"] <= CONVERGED), LONG_EPOCHS + 1
    )


@reading(REPORT_EPOCHS, needs_record=True)
def gradient_decades(run: Run) -> float | None:
    """log10 of the input layer's over the output layer's gradient norm at epoch 25: how many
    decades the gradient shrinks on its way down."""
    if run.record is None or len(run.record["history"]) < REPORT_EPOCHS:
        return None
    epoch = run.record["history"][REPORT_EPOCHS - 1]
    depth = run.setting[0]
    first, last = epoch.get("grad_norm/layer_0"), epoch.get(f"grad_norm/layer_{depth}")
    if not first or not last:
        return None
    return math.log10(first / last)


@reading(REPORT_EPOCHS, needs_record=True)
def dead_units(run: Run) -> float | None:
    return None if run.record is None else run.record.get("dead_units")


def spec(depth: int, width: int, **settings: Any) -> tuple:
    """A setting of VARIED: the report's unless `settings` say otherwise (activation=...)."""
    chosen = {**REPORT, **{f"model.{k}": v for k, v in settings.items()}}
    return (depth, width, chosen["model.activation"], chosen["model.optimizer"], chosen["model.lr"])


def specs(cells: Iterable[tuple[int, int]], **settings: Any) -> list[tuple]:
    """The spec of each (depth, width) cell."""
    return [spec(depth, width, **settings) for depth, width in cells]


class NotTested(Exception):
    """The sweep has no run of a setting the claim reads; its message: the overrides."""


@dataclass
class Readings:
    """Each setting's values, one per seed, over the seeds every setting has."""

    values: dict[tuple, np.ndarray]
    seeds: list[int]

    def __getitem__(self, setting: tuple) -> np.ndarray:
        return self.values[setting]

    def interval(self, statistic: Callable[..., np.ndarray], *groups: list[tuple]):
        """evidence.interval of the statistic of these groups of settings."""
        return interval([[self.values[s] for s in group] for group in groups], statistic)


def overrides(setting: tuple, reading: Reading) -> str:
    text = " ".join(f"{k}={v}" for k, v in zip(VARIED, setting))
    return f"{text} trainer.max_epochs>={reading.epoch}"  # type: ignore[attr-defined]


def read(runs: list[Run], settings: Iterable[tuple], reading: Reading) -> Readings:
    """The reading of every setting, per seed; NotTested naming the first setting with none."""
    by_setting: dict[tuple, dict[int, float]] = {}
    for setting in dict.fromkeys(settings):
        found: dict[int, float] = {}
        for run in runs:
            if run.setting == setting and run.seed not in found:
                value = reading(run)
                if value is not None and math.isfinite(value):
                    found[run.seed] = float(value)
        if not found:
            has_runs = any(run.setting == setting for run in runs)
            if has_runs and reading.needs_record:  # type: ignore[attr-defined]
                raise NotTested(f"metrics.json of {overrides(setting, reading)} (job folders)")
            raise NotTested(overrides(setting, reading))
        by_setting[setting] = found
    seeds = sorted(set.intersection(*(set(f) for f in by_setting.values())))
    return Readings({s: np.array([f[k] for k in seeds]) for s, f in by_setting.items()}, seeds)


# ---- the claims


@dataclass
class Finding:
    """What a claim's test found: the effect and its interval, P(improvement), a detail."""

    found: Interval | None
    probability: float | None = None
    detail: str = ""


@dataclass
class Claim:
    number: str
    quote: str
    test: str
    measure: Callable[[list[Run]], Finding]
    side: str = ">"  # or "<": the effect the claim makes, against the threshold
    threshold: float = 0.0
    unit: str = "nats"
    figure: str = SETTINGS_FIGURE  # its figures, comma-separated
    sweep: str = EXPERIMENT  # the overrides that train its runs

    @property
    def rule(self) -> str:
        return f"{self.side} {self.threshold:g} {self.unit}".strip()


CLAIMS: list[Claim] = []  # in the report's order: the order the claims below are declared


def claim(number: str, quote: str, test: str, rule: str = "> 0", **more: Any):
    """Declares the claim the function under it measures: `rule` its side and threshold
    ("> 0.1"), `more` its unit, figure and sweep where not the usual."""

    def declare(measure: Callable[[list[Run]], Finding]) -> Callable[[list[Run]], Finding]:
        side, threshold = rule.split()
        CLAIMS.append(Claim(number, quote, test, measure, side, float(threshold), **more))
        return measure

    return declare


# A claim about the report's depth x width grid: the grid's experiment trains its runs.
grid_claim = partial(claim, figure=GRID_FIGURE, sweep="experiment=depth_width")


@dataclass
class Verdict:
    claim: Claim
    verdict: str  # holds, does not hold, not decided, not tested
    finding: Finding  # not tested: none found
    missing: str = ""  # not tested: a setting it lacks

    def row(self) -> dict[str, Any]:
        """Its row of claims.csv."""
        f = self.finding.found
        return dict(
            claim=self.claim.number,
            quote=self.claim.quote,
            test=self.claim.test,
            rule=self.claim.rule,
            effect=f.estimate if f else None,
            ci_low=f.low if f else None,
            ci_high=f.high if f else None,
            seeds=f.seeds if f else None,
            improvement_probability=self.finding.probability,
            verdict=self.verdict,
            detail=self.finding.detail,
            figure=self.claim.figure,
            missing=self.missing,
        )


NOT_TESTED = "not tested by this sweep"


def _short(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "n/a"


def _m(values: Any) -> str:
    """The mean of the values, short."""
    return _short(float(np.mean(values)))


def _means(group: list[np.ndarray], axis: int = -1) -> list[np.ndarray]:
    """Each setting's mean over seeds."""
    return [np.mean(s, axis=axis) for s in group]


def _drops(
    better: list[np.ndarray], worse: list[np.ndarray], detail: str, smallest: bool = False
) -> Finding:
    """Paired settings, the claim being that each `better` reads lower than its `worse`. Effect:
    per seed, the mean over pairs (the smallest, `smallest`) of (worse - better);
    P(improvement) of `better`, averaged over pairs."""

    def statistic(better, worse, axis=-1):
        drops = [np.mean(w - b, axis=axis) for b, w in zip(better, worse)]
        return np.min(drops, axis=0) if smallest else sum(drops) / len(drops)

    probability = float(np.mean([improvement_probability(b, w) for b, w in zip(better, worse)]))
    return Finding(interval([better, worse], statistic), probability, detail)


def compare(r: Readings, pairs, detail: str, smallest: bool = False) -> Finding:
    """_drops of (better, worse) setting pairs of the readings."""
    pairs = list(pairs)
    return _drops([r[b] for b, _ in pairs], [r[w] for _, w in pairs], detail, smallest)


def _best(r: Readings, settings) -> tuple:
    return min(settings, key=lambda s: float(np.mean(r[s])))


def best_gap(runs, claimed_worse, claimed_better) -> Finding:
    """Effect: the lowest mean of `claimed_worse` minus the lowest mean of `claimed_better`;
    P(improvement) between those two best settings."""
    worse, better = list(claimed_worse), list(claimed_better)
    r = read(runs, worse + better, loss_at())

    def statistic(worse, better, axis=-1):
        return np.min(_means(worse, axis), axis=0) - np.min(_means(better, axis), axis=0)

    found = r.interval(statistic, worse, better)
    bw, bb = _best(r, worse), _best(r, better)
    label = lambda s: f"depth {s[0]} width {s[1]}"  # noqa: E731
    detail = f"best claimed worse: {label(bw)} {_m(r[bw])}; claimed better: {label(bb)} {_m(r[bb])}"
    return Finding(found, improvement_probability(r[bb], r[bw]), detail)


def _group_compare(runs, better, worse, reading, labels) -> Finding:
    """Effect: mean of `worse` settings minus mean of `better` ones (per seed, then the mean);
    P(improvement) between the per-seed means of the two groups."""
    better, worse = list(better), list(worse)
    r = read(runs, better + worse, reading)

    def statistic(better, worse, axis=-1):
        return np.mean(worse, axis=0).mean(axis=axis) - np.mean(better, axis=0).mean(axis=axis)

    found = r.interval(statistic, better, worse)
    b = np.mean([r[s] for s in better], axis=0)
    w = np.mean([r[s] for s in worse], axis=0)
    detail = f"{labels[0]}: {_short(float(b.mean()))}, {labels[1]}: {_short(float(w.mean()))}"
    return Finding(found, improvement_probability(b, w), detail)


def at_configs(runs, reading, what: str, better: dict, worse: dict) -> Finding:
    """compare() at each of CONFIGS: settings `better` (optimizer=...) against `worse`; the
    detail: each configuration's mean of both, `what` naming them."""
    pairs = list(zip(specs(CONFIGS, **better), specs(CONFIGS, **worse)))
    r = read(runs, chain(*pairs), reading)
    means = "; ".join(f"depth {a[0]} width {a[1]}: {_m(r[a])} / {_m(r[b])}" for a, b in pairs)
    return compare(r, pairs, f"{what}: {means}")


@grid_claim(
    "1",
    "it is generally better to have wide networks ... the loss drops dramatically "
    "(e.g., at Depth 2, it goes from 0.48 to 0.0001)",
    "val_loss at depth 2: width 1 minus width 20",
    "> 0.1",
)
def claim_wide(runs):
    narrow, wide = spec(2, 1), spec(2, 20)
    r = read(runs, [wide, narrow], loss_at())
    return compare(r, [(wide, narrow)], f"width 1: {_m(r[narrow])}, width 20: {_m(r[wide])}")


@grid_claim(
    "2",
    "networks with a width of only 1 to 2 neurons perform relatively poorly regardless of "
    "how deep they are",
    "lowest mean val_loss of width 1-2 (depth 1-20) minus lowest of width 5-20",
    "> 0.01",
)
def claim_narrow(runs):
    narrow, wide = specs(product(DEPTHS[1:], (1, 2))), specs(product(DEPTHS[1:], (5, 10, 20)))
    return best_gap(runs, narrow, wide)


@grid_claim(
    "3",
    "the standard deviation of the loss also decreases as we use wider hidden layers",
    "std of val_loss over seeds, mean over depth 1-20: width 1-2 minus width 10-20",
)
def claim_spread(runs):
    narrow, wide = specs(product(DEPTHS[1:], (1, 2))), specs(product(DEPTHS[1:], (10, 20)))
    r = read(runs, narrow + wide, loss_at())

    def spread(group, axis=-1):  # the mean over settings of the std over seeds
        return np.mean([np.std(s, axis=axis, ddof=1) for s in group], axis=0)

    found = r.interval(lambda n, w, axis=-1: spread(n, axis) - spread(w, axis), narrow, wide)
    sd = lambda group: _short(float(spread([r[s] for s in group])))  # noqa: E731
    return Finding(found, None, f"mean std, width 1-2: {sd(narrow)}, width 10-20: {sd(wide)}")


@grid_claim(
    "4",
    "adding hidden layers helps initially. Going from 0 layers to 1, 2, 3 or 5 layers "
    "results in a massive drop in loss, provided the network is wide enough",
    "smallest drop of val_loss from depth 0 to depth 1, 2, 3, 5, each at width 5, 10, 20",
    "> 0.1",
)
def claim_depth_helps(runs):
    pairs = [(spec(d, w), spec(0, w)) for w in (5, 10, 20) for d in (1, 2, 3, 5)]
    r = read(runs, chain(*pairs), loss_at())
    detail = f"depth 0: {_m(r[spec(0, 10)])}; the smallest of 12 drops (depth 1-5 x width 5-20)"
    return compare(r, pairs, detail, smallest=True)


@grid_claim(
    "5",
    "Performance degrades significantly as the network becomes very deep (10 or 20 layers)",
    "mean val_loss at depth 10-20 minus depth 2-5, width 5-20",
    "> 0.1",
)
def claim_too_deep(runs):
    labels = ("depth 2-5", "depth 10-20")
    return _group_compare(runs, specs(REGION), specs(DEEP), loss_at(), labels)


@claim(
    "5b",
    "likely due to optimization issues like vanishing gradients",
    "decades the gradient norm shrinks from the output to the input layer (epoch 25): "
    "depth 10-20 minus depth 2-5, width 5-20; the cure: the residual experiment",
    "> 1",
    unit="decades",
    figure=f"gradient_norms.png, {RESIDUAL_REPORT}",
)
def claim_vanishing(runs):
    labels = ("log10 input/output gradient norm, depth 10-20", "depth 2-5")
    found = _group_compare(runs, specs(DEEP), specs(REGION), gradient_decades, labels)
    found.probability = None  # a mechanism, not a setting that wins
    return found


@grid_claim(
    "6",
    "The best performance ... is found in the depth of 2-5 layers and larger width of 5-20 neurons",
    "lowest mean val_loss outside depth 2-5 x width 5-20 minus lowest inside",
)
def claim_region(runs):
    outside = specs(cell for cell in product(DEPTHS, WIDTHS) if cell not in REGION)
    return best_gap(runs, outside, specs(REGION))


@claim(
    "7",
    "[Adam is] probably better at finding the global minima in our problem than using sgd",
    "val_loss at epoch 100, lr 0.01: sgd minus adam, mean over the 4 configurations",
)
def claim_adam(runs):
    return at_configs(runs, loss_at(LONG_EPOCHS), "adam / sgd", {}, {"optimizer": "sgd"})


@claim(
    "7b",
    "(the same, each optimizer at its best learning rate)",
    "as 7, each optimizer at the lr of 0.001, 0.01, 0.1 with its lowest mean",
)
def claim_adam_tuned(runs):
    reading = loss_at(LONG_EPOCHS)
    at = {(o, lr): specs(CONFIGS, optimizer=o, lr=lr) for lr in LRS for o in OPTIMIZERS}
    r = read(runs, [s for group in at.values() for s in group], reading)
    mean = lambda o, lr: float(np.mean([r[s] for s in at[o, lr]]))  # noqa: E731
    best = {o: min(LRS, key=lambda lr: mean(o, lr)) for o in OPTIMIZERS}
    worse = {"optimizer": "sgd", "lr": best["sgd"]}
    finding = at_configs(runs, reading, "adam / sgd", {"lr": best["adam"]}, worse)
    finding.detail += (
        f" (best lr: adam {best['adam']:g}, sgd {best['sgd']:g}, chosen on these runs)"
    )
    return finding


@claim(
    "8",
    "A higher learning rate might make us converge faster",
    f"epochs to val_loss <= {CONVERGED:g}: lr 0.01 minus lr 0.1 (Adam, tanh; never: 101)",
    unit="epochs",
)
def claim_lr_faster(runs):
    what = "epochs, lr 0.1 / lr 0.01"
    return at_configs(runs, epochs_to_converge, what, {"lr": 0.1}, {"lr": 0.01})


@claim(
    "8b",
    "but also risks overfitting",
    "val_loss - train_loss at epoch 100: lr 0.1 minus lr 0.01",
)
def claim_lr_overfits(runs):
    # The claim: lr 0.1 has the larger gap; compare() wants the setting with the lower value first.
    what = "val_loss - train_loss, lr 0.01 / lr 0.1"
    found = at_configs(runs, loss_at(LONG_EPOCHS, gap=True), what, {"lr": 0.01}, {"lr": 0.1})
    found.probability = None  # a larger gap is no improvement
    return found


@claim(
    "9",
    "the loss does not reduce much more after 25 epochs",
    "val_loss at epoch 25 minus at epoch 100 of the same runs (the report's settings)",
    "< 0.01",
)
def claim_25_epochs(runs):
    configs = specs(CONFIGS)
    r, r100 = read(runs, configs, loss_at()), read(runs, configs, loss_at(LONG_EPOCHS))
    seeds = sorted(set(r.seeds) & set(r100.seeds))
    at25 = [r[s][[r.seeds.index(k) for k in seeds]] for s in configs]
    at100 = [r100[s][[r100.seeds.index(k) for k in seeds]] for s in configs]
    ratio = float(np.mean([np.mean(a) / np.mean(b) for a, b in zip(at25, at100)]))
    detail = (
        f"depth 2 width 10: {_m(at25[0])} at epoch 25, {_m(at100[0])} at 100; the loss at 25 is "
        f"{ratio:.3g}x the loss at 100 (mean over the configurations)"
    )
    return _drops(at100, at25, detail)  # the loss at epoch 100 the lower


@claim(
    "10",
    "We use the tanh activation function for hidden layers",
    "val_loss, relu minus tanh, mean over depth 1-20 x width 1-20",
    figure=GRID_FIGURE,
)
def claim_tanh(runs):
    pairs = list(zip(specs(HIDDEN), specs(HIDDEN, activation="relu")))
    r = read(runs, chain(*pairs), loss_at())
    tanh, relu = _m([r[t] for t, _ in pairs]), _m([r[u] for _, u in pairs])
    detail = f"mean val_loss over depth 1-20 x width 1-20: tanh {tanh}, relu {relu}"
    return compare(r, pairs, detail)


@claim(
    "10b",
    "Using relu might make us waste information if it does not activate the neuron",
    "share of relu units that never activate on the validation set, mean over depth 1-20 "
    "x width 1-20",
    "> 0.05",
    unit="of units",
    figure=GRID_FIGURE,
)
def claim_dead(runs):
    cells = specs(HIDDEN, activation="relu")
    r = read(runs, cells, dead_units)
    found = r.interval(lambda cells, axis=-1: np.mean(_means(cells, axis), axis=0), cells)
    share = lambda group: _short(float(np.mean([r[s] for s in group])))  # noqa: E731
    region = specs(REGION, activation="relu")
    narrow = [s for s in cells if s[1] <= 2]
    deep = [s for s in cells if s[0] >= 10]
    detail = f"best region: {share(region)}, width 1-2: {share(narrow)}, depth 10-20: {share(deep)}"
    return Finding(found, None, detail)


@claim(
    "11",
    "We think that the parameters we have chosen are the best for the problem",
    "val_loss at epoch 25: the best other optimizer x activation x lr minus the report's "
    "(Adam, tanh, 0.01), mean over the 4 configurations",
)
def claim_best_settings(runs):
    chosen = specs(CONFIGS)
    others = {
        (o, a, lr): specs(CONFIGS, optimizer=o, activation=a, lr=lr)
        for o, a, lr in product(OPTIMIZERS, ACTIVATIONS, LRS)
        if (o, a, lr) != ("adam", "tanh", 0.01)
    }
    r = read(runs, chosen + [s for group in others.values() for s in group], loss_at())

    def statistic(mine, *theirs, axis=-1):
        mean = lambda group: np.mean(_means(group, axis), axis=0)  # noqa: E731
        return np.min([mean(group) for group in theirs], axis=0) - mean(mine)

    found = r.interval(statistic, chosen, *others.values())
    best_alt = min(others, key=lambda a: float(np.mean([r[s] for s in others[a]])))
    mine = np.mean([r[s] for s in chosen], axis=0)
    theirs = np.mean([r[s] for s in others[best_alt]], axis=0)
    alt = f"{best_alt[0]}, {best_alt[1]}, lr {best_alt[2]:g}"
    detail = f"best alternative: {alt}: {_m(theirs)}; the report's: {_m(mine)}"
    return Finding(found, improvement_probability(mine, theirs), detail)


def evaluate(runs: list[Run]) -> list[Verdict]:
    """Every claim's verdict on these runs."""
    verdicts = []
    for claim in CLAIMS:
        try:
            finding = claim.measure(runs)
        except NotTested as missing:
            verdicts.append(Verdict(claim, NOT_TESTED, Finding(None), str(missing)))
            continue
        found = finding.found
        verdict = decide(found, claim.side, claim.threshold)
        if verdict == UNDECIDED:
            verdict = f"{UNDECIDED} at {found.seeds if found else 'fewer than 2'} seeds"
        verdicts.append(Verdict(claim, verdict, finding))
    return verdicts


# ---- claims.csv, the page's section, the lines


def write_claims(sweep_dir: Path, verdicts: list[Verdict]) -> Path:
    path = Path(sweep_dir) / CLAIMS_FILE
    rows = [v.row() for v in verdicts]
    with writing(path), path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def line(row: dict[str, Any]) -> str:
    """A claim's line, from its row (as written, or read back from claims.csv)."""
    claim = next(c for c in CLAIMS if c.number == row["claim"])
    if row["verdict"] == NOT_TESTED:
        return f"claim {claim.number}: {NOT_TESTED} (no {row['missing']}; {claim.sweep})"
    if row["effect"] in (None, ""):
        return f"claim {claim.number}: {row['verdict']} (fewer than 2 seeds in common)"
    effect, low, high = (float(row[k]) for k in ("effect", "ci_low", "ci_high"))
    p = row["improvement_probability"]
    odds = f", P(improvement) {float(p):.2f}" if p not in (None, "") else ""
    return (
        f"claim {claim.number}: {row['verdict']}: {_short(effect)} [{_short(low)}, "
        f"{_short(high)}] {claim.unit} (rule {claim.rule}){odds}, {int(float(row['seeds']))} seeds"
    )


def claim_lines(rows: list[dict[str, Any]]) -> list[str]:
    """One line per claim; a sweep that tests none: one line saying which sweep does."""
    if all(row["verdict"] == NOT_TESTED for row in rows):
        return [
            f"claims: none tested by this sweep (python -m src.train -m {EXPERIMENT} tests all)"
        ]
    return [line(row) for row in rows]


def read_claims(sweep_dir: Path) -> list[dict[str, Any]]:
    """claims.csv's rows; none if the sweep has no claims.csv."""
    path = Path(sweep_dir) / CLAIMS_FILE
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


COLOURS = {"holds": "#d8f0d8", "does not hold": "#f6d0d0"}
SECTION_START, SECTION_END = "<!-- claims -->", "<!-- /claims -->"


def _cell(v: Verdict, figures: list[str], sweep_dir: Path) -> list[str]:
    """A claim's cells in the Claims table (html)."""
    f, finding = v.finding.found, v.finding
    effect = f"{_short(f.estimate)} [{_short(f.low)}, {_short(f.high)}] {v.claim.unit}" if f else ""
    verdict = (
        v.verdict if v.verdict != NOT_TESTED else f"{NOT_TESTED}: no {v.missing} ({v.claim.sweep})"
    )
    links = (_link(name.strip(), figures, sweep_dir) for name in v.claim.figure.split(","))
    detail = f"<br><small>{html.escape(finding.detail)}</small>" if finding.detail else ""
    return [
        v.claim.number,
        f"“{html.escape(v.claim.quote)}”",
        html.escape(v.claim.test) + detail,
        html.escape(v.claim.rule),
        html.escape(effect),
        "" if finding.probability is None else f"{finding.probability:.2f}",
        "" if f is None else str(f.seeds),
        html.escape(verdict),
        ", ".join(link for link in links if link),
    ]


def section(verdicts: list[Verdict], figures: list[str], sweep_dir: Path) -> str:
    """The Claims section of index.html: the rule, one row per claim, its figures."""
    lines = []
    for v in verdicts:
        colour = COLOURS.get(v.verdict, "#eeeeee" if v.verdict == NOT_TESTED else "#fff3c4")
        cells = "".join(f"<td>{c}</td>" for c in _cell(v, figures, sweep_dir))
        lines.append(f'<tr style="background:{colour}">{cells}</tr>')
    rows = "\n".join(lines)
    images = "\n".join(f'<img src="{html.escape(f)}" alt="{html.escape(f)}">' for f in figures)
    return f"""{SECTION_START}
<h2>Claims: the course report's conclusions, tested</h2>
<p>{html.escape(RULE)} The effect's interval: 95% percentile bootstrap over seeds
(scipy.stats.bootstrap,
seeds resampled together across the settings compared); P(improvement): the chance that a run of the
setting the claim favours ends below a run of the other (scipy.stats.mannwhitneyu). Read at epoch 25
unless the test says otherwise.
Every number: <a href="../{CLAIMS_FILE}">{CLAIMS_FILE}</a>.</p>
<table>
<tr><th>#</th><th>the report says</th><th>test</th><th>rule</th><th>effect [95% CI]</th>\
<th>P(improvement)</th><th>seeds</th><th>verdict</th><th>figure</th></tr>
{rows}
</table>
{images}
{SECTION_END}"""


def _link(name: str, figures: list[str], sweep_dir: Path) -> str:
    """A figure a claim names, linked; "" if it is not there. A page of the repository (the
    residual experiment's report) by its path from the report's folder, else a figure this
    report drew by its file name (the claims' own are named in `figures`)."""
    report = Path(sweep_dir) / REPORT_DIR
    if name.startswith("multirun/"):
        there = (ROOT / name).exists()
        href = Path(os.path.relpath(ROOT / name, report.resolve())).as_posix()
    else:
        ours = name in (GRID_FIGURE, SETTINGS_FIGURE)
        there, href = name in figures or (not ours and (report / name).exists()), name
    label = "the residual experiment" if name == RESIDUAL_REPORT else name
    return f'<a href="{html.escape(href)}">{html.escape(label)}</a>' if there else ""


def insert_section(page: str, claims_html: str) -> str:
    """The page with its Claims section replaced, or inserted at the top: after its title."""
    if SECTION_START in page and SECTION_END in page:
        before, rest = page.split(SECTION_START, 1)
        return before + claims_html + rest.split(SECTION_END, 1)[1]
    at = page.find("</h1>")
    at = at + len("</h1>") if at >= 0 else 0
    return page[:at] + "\n" + claims_html + page[at:]


def claims_section(sweep_dir: Path, figures: list[str]) -> str:
    """Decide the claims on the sweep, write claims.csv, and return the page's section (a
    line saying why, if they could not be decided: the report is written all the same)."""
    try:
        verdicts = claims_of_sweep(sweep_dir)
    except Exception as error:  # a bug here must not cost the sweep its report
        log.exception("claims not decided")
        return f"<p>Claims not decided: {html.escape(f'{type(error).__name__}: {error}')}</p>"
    return section(verdicts, figures, sweep_dir)


def claims_of_sweep(sweep_dir: Path) -> list[Verdict]:
    """Read the sweep's runs, decide every claim and write claims.csv."""
    verdicts = evaluate(load_runs(sweep_dir))
    write_claims(sweep_dir, verdicts)
    return verdicts


# ---- the figures' data


def _cell_values(runs: list[Run], reading: Reading, activation: str, spread: bool) -> np.ndarray:
    """(depths, widths): the mean (or std, spread) over seeds of the cell's readings; NaN where
    it has none (or fewer than 2 for a std)."""
    grid = np.full((len(DEPTHS), len(WIDTHS)), np.nan)
    for i, d in enumerate(DEPTHS):
        for j, w in enumerate(WIDTHS):
            setting = spec(d, w, activation=activation)
            values = [reading(r) for r in runs if r.setting == setting]
            values = [v for v in values if v is not None and math.isfinite(v)]
            if spread and len(values) >= 2:
                grid[i, j] = np.std(values, ddof=1)
            elif values and not spread:
                grid[i, j] = np.mean(values)
    return grid


def _settings_curves(runs: list[Run]) -> dict:
    """Per (optimizer, (depth, width)) of CONFIGS, per (activation, lr): the median val_loss
    over seeds per epoch, from runs of at least LONG_EPOCHS epochs with their history."""
    curves: dict = {}
    for optimizer, (depth, width), activation, lr in product(OPTIMIZERS, CONFIGS, ACTIVATIONS, LRS):
        setting = spec(depth, width, optimizer=optimizer, activation=activation, lr=lr)
        found = [
            [e["val_loss"] for e in r.record["history"][:LONG_EPOCHS]]
            for r in runs
            if r.setting == setting and r.record and len(r.record["history"]) >= LONG_EPOCHS
        ]
        if found:
            median = np.nanmedian(np.array(found, dtype=float), axis=0)
            curves.setdefault((optimizer, (depth, width)), {})[activation, lr] = median
    return curves


def draw_claim_figures(sweep_dir: Path, out: Path) -> list[Path]:
    """Draw the figures the claims name into `out` (the report folder); those with something to
    show. matplotlib is imported here, by whoever draws."""
    from src.report.claim_figures import grid_figure, settings_figure

    runs = load_runs(sweep_dir)
    loss = loss_at()
    panels = [
        ("tanh: mean val_loss", _cell_values(runs, loss, "tanh", False), True),
        ("tanh: std of val_loss over seeds", _cell_values(runs, loss, "tanh", True), True),
        ("relu: mean val_loss", _cell_values(runs, loss, "relu", False), True),
        ("relu: share of units never active", _cell_values(runs, dead_units, "relu", False), False),
    ]
    panels = [p for p in panels if np.isfinite(p[1]).any()]
    drawn = []
    if panels:
        drawn.append(grid_figure(panels, DEPTHS, WIDTHS, Path(out) / GRID_FIGURE))
    curves = _settings_curves(runs)
    if curves:
        drawn.append(settings_figure(curves, REPORT_EPOCHS, Path(out) / SETTINGS_FIGURE))
    return drawn


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m src.report.claims", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder with results.csv")
    args = parser.parse_args(argv)
    results = args.sweep_dir / RESULTS_FILE
    try:
        if not results.is_file():
            raise SweepError(f"{results} not found: a sweep folder with results.csv")
        verdicts = claims_of_sweep(args.sweep_dir)
    except (KeyError, ValueError, TypeError, csv.Error, UnicodeDecodeError) as error:
        if not isinstance(error, SweepError):
            error = f"{results} cannot be read ({type(error).__name__}: {error})"
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(
            f"error: {error.filename or args.sweep_dir}: {error.strerror or error}", file=sys.stderr
        )
        return 2
    page = args.sweep_dir / REPORT_DIR / "index.html"
    if page.is_file():
        figures = [p.name for p in draw_claim_figures(args.sweep_dir, page.parent)]
        page.write_text(
            insert_section(page.read_text(), section(verdicts, figures, args.sweep_dir))
        )
    for text in claim_lines([v.row() for v in verdicts]):
        print(text)
    print(f"claims: {args.sweep_dir / CLAIMS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
