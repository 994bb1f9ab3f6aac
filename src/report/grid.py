"""The grid report of a sweep: results.csv, figures and a page to read, in `<sweep>/report/`.

    python -m src.report multirun/2026-11-26/21-30-05
    python -m src.report <sweep dir> --rows model.depth --cols model.lr --seed 2
    python -m src.report <sweep dir> --facet model.residual

Written at the end of every multirun by src.report.callback.GridReport; works on a partial or
interrupted sweep too. Failed, diverged and missing jobs stay in results.csv and are left out
of the means. A swept key on neither axis can be the facet: the grid is drawn once per value
of it, side by side (by default, when it is the only such key and has at most 4 values).
Every other swept key on neither axis is tuned away: each cell shows the configuration with
the lowest mean val_loss among those in the cell.
"""

from __future__ import annotations

import html
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.config import ArgumentParser, ConfigError
from src.report.results import (
    RESULTS_FILE,
    Axis,
    SweepError,
    collect,
    override_keys,
    swept_keys,
    values,
    write_results,
)
from src.run.files import read_metrics

REPORT_DIR = "report"
DEFAULT_ROWS, DEFAULT_COLS = "model.depth", "model.width"
TOP = 10  # configurations in the page's table
AUTO = "auto"  # --facet's default: the only swept key on neither axis, if it has few values
MAX_AUTO_FACET = 4  # values of a key faceted by default; more are tuned away
CAPTIONS = {  # figure file stem: its heading on the page
    "data": "The data set",
    "heatmap_val_loss": "Validation loss over the grid",
    "heatmap_val_accuracy": "Validation accuracy over the grid",
    "params": "Validation loss against the number of parameters",
    "boundaries": "Decision boundaries, one per cell",
    "boundaries_best_worst": "The best and the worst configuration",
    "learning_curves": "Learning curves",
    "gradient_norms": "Gradient norm by layer, first and last epoch",
}


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

    def pm(self, metric: str) -> str:
        return f"{self.mean(metric):.4f} ± {self.std(metric):.4f}"

    def describe(self, keys: list[str]) -> str:
        return ", ".join(f"{k}={self.config.get(k)}" for k in keys)


def group_runs(results: list[dict[str, Any]]) -> list[Group]:
    keys = [k for k in override_keys(results) if k != "seed"]
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
    return facet


@dataclass
class Report:
    """What the figures are drawn from: the sweep's runs, grouped and laid out as the grid."""

    sweep_dir: Path
    out: Path
    results: list[dict[str, Any]]
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
        return next((r for r in g.ok if r.get("seed") == self.seed), g.ok[0])


def sweep_name(sweep_dir: Path) -> str:
    """How the report names its sweep: relative to the folder the command ran in when it lies
    under it, else by the sweep folder's own name; never by an absolute path (a report is
    moved, shared and committed)."""
    path = Path(sweep_dir).resolve()
    try:
        relative = path.relative_to(Path.cwd().resolve())
    except ValueError:
        return path.name
    return relative.as_posix() if relative.parts else path.name


def _left_out(results: list[dict[str, Any]]) -> str:
    counts = Counter(r["status"] for r in results if r["status"] != "ok")
    if not counts:
        return f"all {len(results)} jobs finished ok"
    what = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    return f"{sum(counts.values())} of {len(results)} jobs left out of the means ({what})"


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
        raise SweepError(f"{sweep_dir}: no finished jobs yet ({len(results)} job folders)")
    row_key, col_key = choose_axes(results, rows, cols)
    facet_key = choose_facet(results, row_key, col_key, facet)
    seeds = values(finished, "seed")
    if seed is not None and seed not in seeds:
        raise ConfigError(
            "--seed", seed, "a seed with finished jobs: " + ", ".join(map(str, seeds))
        )
    swept = swept_keys(results)
    tuned = [k for k in swept if k not in (row_key, col_key, facet_key)]
    fixed = [k for k in override_keys(results) if k != "seed" and k not in swept]
    context = [
        f"one grid per {facet_key}" if facet_key else "",
        f"best over {', '.join(tuned)}" if tuned else "",
        "fixed: " + ", ".join(f"{k}={results[0].get(k)}" for k in fixed) if fixed else "",
        _left_out(results),
    ]
    groups = group_runs(results)
    row = Axis(row_key or "", values(results, row_key))
    col = Axis(col_key or "", values(results, col_key))
    facets = Axis(facet_key or "", values(results, facet_key))
    keys = (row_key, col_key, facet_key)

    def best(*where: Any) -> Group | None:
        cell = [g for g in groups if g.ok and tuple(g.config.get(k) for k in keys) == where]
        return min(cell, key=lambda g: g.mean("val_loss"), default=None)

    return Report(
        sweep_dir=sweep_dir,
        out=sweep_dir / REPORT_DIR,
        results=results,
        row=row,
        col=col,
        facet=facets,
        seed=seeds[0] if seed is None else seed,
        groups=groups,
        grids={f: [[best(r, c, f) for c in col.values] for r in row.values] for f in facets.values},
        records={r["job_dir"]: read_metrics(sweep_dir / r["job_dir"]) for r in finished},
        swept=swept,
        tuned=tuned,
        context="; ".join(part for part in context if part),
    )


# The views of src/report/views.py, in the order the page shows them.
VIEWS = (
    "search_figures",
    "data_figure",
    "heatmap_figures",
    "params_figures",
    "boundary_figures",
    "curve_figures",
    "gradient_figures",
)


def draw(r: Report, view: str) -> list[Path]:
    """Draw one view; src/report/views.py (torch, matplotlib) is imported by whoever draws."""
    from src.report import views

    return getattr(views, view)(r)


def write_report(
    sweep_dir: Path,
    rows: str | None = None,
    cols: str | None = None,
    seed: int | None = None,
    workers: Any = None,
    facet: str | None = AUTO,
) -> Path:
    """Write results.csv, the figures and index.html for the sweep; return the report folder.

    rows, cols: the swept keys of the grid's axes (default model.depth x model.width);
    seed: the repetition whose models draw the decision boundaries (default the first);
    workers: a joblib.Parallel that draws the views side by side (else one after another here);
    facet: the swept key drawn as grids side by side, "none", or AUTO (see choose_facet).
    """
    report = build(sweep_dir, rows, cols, seed, facet)
    report.out.mkdir(exist_ok=True)
    if workers is None:
        drawn = [draw(report, view) for view in VIEWS]
    else:
        from joblib import delayed

        drawn = workers(delayed(draw)(report, view) for view in VIEWS)
    paths = [path for paths in drawn for path in paths]
    for stale in set(CAPTIONS) - {p.stem for p in paths}:  # an earlier report's, not drawn now
        (report.out / f"{stale}.png").unlink(missing_ok=True)
    write_page(report, paths)
    return report.out


def write_page(r: Report, paths: list[Path]) -> Path:
    """index.html: the best configuration, a table of the best ones, then every figure."""
    ranked = r.ranked
    head = [*r.swept, "seeds ok", "val_loss", "val_accuracy", "test_accuracy", "n_params"]
    cells = [
        [
            *(g.config.get(k) for k in r.swept),
            f"{len(g.ok)}/{len(g.runs)}",
            g.pm("val_loss"),
            g.pm("val_accuracy"),
            g.pm("test_accuracy"),
            g.ok[0]["n_params"],
        ]
        for g in ranked[:TOP]
    ]
    table = "\n".join(
        "<tr>" + "".join(f"<{tag}>{html.escape(str(x))}</{tag}>" for x in line) + "</tr>"
        for tag, line in [("th", head)] + [("td", line) for line in cells]
    )
    images = "\n".join(
        f'<h2>{CAPTIONS.get(p.stem, p.stem)}</h2>\n<img src="{p.name}" alt="{p.stem}">'
        for p in paths
    )
    best, name = ranked[0], html.escape(sweep_name(r.sweep_dir))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Report: {name}</title>
<style>body{{font-family:sans-serif;max-width:1400px;margin:2em auto}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px}}
img{{max-width:100%}}</style></head><body>
<h1>Grid report: {name}</h1>
<p>Best configuration: <b>{html.escape(best.describe(r.swept))}</b>,
val_loss {best.pm("val_loss")} (mean ± std across seeds).</p>
<p>{html.escape(r.context)}. Every job: <a href="../{RESULTS_FILE}">{RESULTS_FILE}</a>.</p>
<h2>The best configurations by mean val_loss</h2>
<table>
{table}
</table>
{images}
</body></html>
"""
    path = r.out / "index.html"
    path.write_text(page)
    return path


def log_to_wandb(sweep_dir: Path, logger_cfg: Any) -> None:
    """One wandb run (job_type report) with the report's figures and the results table."""
    import wandb

    from src.run.loggers import start_wandb_run

    sweep_dir = Path(sweep_dir)
    results = collect(sweep_dir)
    columns = list(dict.fromkeys(k for row in results for k in row))
    start_wandb_run(
        logger_cfg, job_type="report", name=f"report {sweep_dir.name}", dir=str(sweep_dir)
    )
    try:
        data = [[row.get(k) for k in columns] for row in results]
        table = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
        pngs = sorted((sweep_dir / REPORT_DIR).glob("*.png"))
        wandb.log({"results": table, **{p.stem: wandb.Image(str(p)) for p in pngs}})
    finally:
        wandb.finish()


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m src.report", description=__doc__.split("\n")[0])
    parser.add_argument("sweep_dir", type=Path, help="a multirun folder (multirun/<date>/<time>)")
    parser.add_argument("--rows", help=f"swept key down the grid (default {DEFAULT_ROWS})")
    parser.add_argument("--cols", help=f"swept key across the grid (default {DEFAULT_COLS})")
    parser.add_argument("--seed", type=int, help="the repetition drawn in the decision boundaries")
    parser.add_argument(
        "--facet",
        default=AUTO,
        help="swept key on neither axis: one grid per value, side by side; none: tune it away "
        f"(default {AUTO}: the only such key, if it has at most {MAX_AUTO_FACET} values)",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = write_report(args.sweep_dir, args.rows, args.cols, args.seed, facet=args.facet)
    except (SweepError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{_left_out(collect(args.sweep_dir))}: {args.sweep_dir / RESULTS_FILE}")
    print(f"report: {out / 'index.html'} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
