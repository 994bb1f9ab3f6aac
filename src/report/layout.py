"""The report's data laid out: a sweep's runs grouped by configuration and placed on the grid.

`build` returns the `Report` that grid.py (the page) and views.py (the figures) both draw from;
without torch or matplotlib, so a sweep's main process can lay it out and leave the drawing.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.errors import ConfigError
from src.report.results import (
    REPORT_DIR,
    Axis,
    SweepError,
    collect,
    override_keys,
    placed,
    swept_keys,
    tally,
    values,
    write_results,
)
from src.run.files import read_metrics
from src.run.schema import SEED_KEY

DEFAULT_ROWS, DEFAULT_COLS = "model.depth", "model.width"
AUTO = "auto"  # --facet's default: the only swept key on neither axis, if it has few values
MAX_AUTO_FACET = 4  # values of a key faceted by default; more are tuned away
MAX_FACETS = 6  # values of a key faceted when asked for: grids side by side stay readable


@dataclass
class Group:
    """One configuration (every override but the seed) and its runs, one per seed."""

    config: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [r for r in self.runs if r["status"] == "ok"]

    def mean(self, metric: str) -> float:
        xs = [r[metric] for r in self.ok]
        return statistics.fmean(xs) if xs else float("nan")

    def std(self, metric: str) -> float:
        xs = [r[metric] for r in self.ok]
        return statistics.stdev(xs) if len(xs) > 1 else float("nan")

    def describe(self, keys: list[str]) -> str:
        return ", ".join(f"{k}={self.config.get(k)}" for k in keys)


def group_runs(results: list[dict[str, Any]]) -> list[Group]:
    keys = [k for k in override_keys(results) if k != SEED_KEY]
    groups: dict[tuple, Group] = {}
    for row in results:
        config = {k: row.get(k) for k in keys}
        groups.setdefault(tuple(config.values()), Group(config)).runs.append(row)
    return list(groups.values())


def choose_axes(
    results: list[dict[str, Any]], rows: str | None, cols: str | None
) -> tuple[str | None, str | None]:
    """The keys asked for (they must be swept), else depth x width, else the first swept keys;
    None for an axis with no swept key left to put on it."""
    swept = swept_keys(results)
    for option, key in (("--rows", rows), ("--cols", cols)):
        if key is not None and key not in swept:
            raise ConfigError(option, key, "a swept key: " + (", ".join(swept) or "none"))
    if rows is not None and rows == cols:
        raise ConfigError("--cols", cols, "a key other than --rows")
    free = [k for k in dict.fromkeys([DEFAULT_ROWS, DEFAULT_COLS, *swept]) if k in swept]
    free = [k for k in free if k not in (rows, cols)]
    rows = rows if rows is not None else (free.pop(0) if free else None)
    cols = cols if cols is not None else (free.pop(0) if free else None)
    return rows, cols


def choose_facet(
    results: list[dict[str, Any]], rows: str | None, cols: str | None, facet: str | None
) -> str | None:
    """The swept key whose values get a grid each, side by side; None for no facet.

    facet: a swept key on neither axis; None or "none": no facet; AUTO: the swept key on
    neither axis when there is exactly one and it has at most MAX_AUTO_FACET values."""
    extra = [k for k in swept_keys(results) if k not in (rows, cols)]
    if facet == AUTO:
        one = len(extra) == 1 and len(values(results, extra[0])) <= MAX_AUTO_FACET
        return extra[0] if one else None
    if facet is None or facet == "none":
        return None
    if facet not in extra:
        allowed = "none, or a swept key on neither axis: " + (", ".join(extra) or "none")
        raise ConfigError("--facet", facet, allowed)
    if len(values(results, facet)) > MAX_FACETS:
        few = ", ".join(k for k in extra if len(values(results, k)) <= MAX_FACETS) or "none"
        allowed = f"none, or a swept key with at most {MAX_FACETS} values: {few}"
        raise ConfigError("--facet", facet, allowed)
    return facet


def spread(n: int, most: int) -> list[int]:
    """At most `most` of the indices 0..n-1, evenly spaced, the first and the last included:
    which values of a long axis a figure draws."""
    if n <= most:
        return list(range(n))
    return sorted({round(i * (n - 1) / (most - 1)) for i in range(most)})


@dataclass
class Report:
    """What the figures are drawn from: the sweep's runs, grouped and laid out as the grid."""

    sweep_dir: Path
    out: Path
    row: Axis
    col: Axis
    facet: Axis  # key "" and values [None]: no facet, one grid
    seed: int
    groups: list[Group]
    # Per facet value, per cell, its best configuration (None: no finished run).
    grids: dict[Any, list[list[Group | None]]]
    records: dict[str, dict[str, Any]]  # metrics.json of each finished job, by job_dir
    swept: list[str]
    tuned: list[str]  # swept keys on neither axis nor the facet: the best of them per cell
    context: str  # for titles: facet, tuned and fixed keys, jobs left out
    splits_cache: dict = field(default_factory=dict)

    @property
    def cells(self) -> list[list[Group | None]]:
        """The grid of a report without a facet (its only one)."""
        (cells,) = self.grids.values()
        return cells

    def panels(self) -> list[tuple[str, list[list[Group | None]]]]:
        """Each facet value's name for titles ("" without a facet) and its grid."""
        return [
            (self.facet.name(v) if self.facet.key else "", cells) for v, cells in self.grids.items()
        ]

    @property
    def ranked(self) -> list[Group]:
        return sorted((g for g in self.groups if g.ok), key=lambda g: g.mean("val_loss"))

    def run_of(self, g: Group) -> dict[str, Any]:
        """The run drawn for a configuration: the chosen seed's, else its first finished one."""
        return next((r for r in g.ok if r.get(SEED_KEY) == self.seed), g.ok[0])


def left_out(results: list[dict[str, Any]]) -> str:
    out = [r["status"] for r in results if r["status"] != "ok"]
    if not out:
        return f"all {len(results)} jobs finished ok"
    return f"{len(out)} of {len(results)} jobs left out of the means ({tally(out)})"


def build(
    sweep_dir: Path,
    rows: str | None = None,
    cols: str | None = None,
    seed: int | None = None,
    facet: str | None = None,
) -> Report:
    """Aggregate the sweep, write results.csv, and lay its runs out as the report's grid,
    one grid per value of `facet` (see choose_facet; None: one grid)."""
    sweep_dir = Path(sweep_dir)
    results = collect(sweep_dir)
    write_results(sweep_dir, results)  # first: whatever fails below, the results are kept
    finished = [r for r in results if r["status"] == "ok"]
    if not finished:
        what = tally(r["status"] for r in results) or "no job folders"
        raise SweepError(f"{sweep_dir}: no job finished ok, nothing to draw ({what})")
    on_grid = placed(results)  # a job whose overrides are unknown is counted, not placed
    row_key, col_key = choose_axes(on_grid, rows, cols)
    facet_key = choose_facet(on_grid, row_key, col_key, facet)
    seeds = values(finished, SEED_KEY)
    if seed is not None and seed not in seeds:
        raise ConfigError(
            "--seed", seed, "a seed with finished jobs: " + ", ".join(map(str, seeds))
        )
    swept = swept_keys(on_grid)
    tuned = [k for k in swept if k not in (row_key, col_key, facet_key)]
    fixed = [k for k in override_keys(on_grid) if k != SEED_KEY and k not in swept]
    context = [
        f"one grid per {facet_key}" if facet_key else "",
        f"best over {', '.join(tuned)}" if tuned else "",
        "fixed: " + ", ".join(f"{k}={on_grid[0].get(k)}" for k in fixed) if fixed else "",
        left_out(results),
    ]
    groups = group_runs(on_grid)
    row = Axis(row_key or "", values(on_grid, row_key))
    col = Axis(col_key or "", values(on_grid, col_key))
    facets = Axis(facet_key or "", values(on_grid, facet_key))
    keys = (row_key, col_key, facet_key)
    best: dict[tuple, Group] = {}  # per cell, its configuration of the lowest mean val_loss
    for g in groups:
        if g.ok:
            cell = tuple(g.config.get(k) for k in keys)
            if cell not in best or g.mean("val_loss") < best[cell].mean("val_loss"):
                best[cell] = g

    return Report(
        sweep_dir=sweep_dir,
        out=sweep_dir / REPORT_DIR,
        row=row,
        col=col,
        facet=facets,
        seed=seeds[0] if seed is None else seed,
        groups=groups,
        grids={
            f: [[best.get((r, c, f)) for c in col.values] for r in row.values]
            for f in facets.values
        },
        records={r["job_dir"]: read_metrics(sweep_dir / r["job_dir"]) for r in finished},
        swept=swept,
        tuned=tuned,
        context="; ".join(part for part in context if part),
    )
