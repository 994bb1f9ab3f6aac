"""The grid report of a sweep: results.csv, figures and a page to read, in `<sweep>/report/`.

    python -m src.report multirun/2026-11-26/21-30-05
    python -m src.report <sweep dir> --rows model.depth --cols model.lr --seed 2
    python -m src.report <sweep dir> --facet model.residual

Works on a partial sweep too: failed, diverged and missing jobs stay in results.csv, out of the
means. A swept key on neither axis can be the facet (a grid per value, side by side); any other
is tuned away (a cell shows its configuration of the lowest mean val_loss). This module is the
page, the command and the wandb run; views.py, imported only by draw(), draws the figures.
"""

from __future__ import annotations

import errno
import html
import math
import sys
import time
from pathlib import Path
from typing import Any

from src.errors import ArgumentParser
from src.report import page
from src.report.claims import claim_lines, claims_section, draw_claim_figures, read_claims
from src.report.layout import (
    AUTO,
    DEFAULT_COLS,
    DEFAULT_ROWS,
    MAX_AUTO_FACET,
    REPORT_DIR,
    Group,
    Report,
    build,
    left_out,
)
from src.report.results import RESULTS_FILE, SweepError, collect, read_results
from src.sweep.lock import ConfigError, holder
from src.sweep.runs import remove_report_run, report_run

TOP = 10  # configurations in the page's table
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


# The views of src/report/views.py, in the order the page shows them.
VIEWS = (
    "data_figure",
    "heatmap_figures",
    "params_figures",
    "boundary_figures",
    "curve_figures",
    "gradient_figures",
)


CLAIM_VIEW = "claim_figures"  # the Claims section's figures (src/report/claims.py)


def draw(r: Report, view: str) -> list[Path]:
    """Draw one view; src/report/views.py (torch, matplotlib) is imported by whoever draws."""
    if view == CLAIM_VIEW:
        return draw_claim_figures(r.sweep_dir, r.out)
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
    every = (*VIEWS, CLAIM_VIEW)
    if workers is None:
        drawn = [draw(report, view) for view in every]
    else:
        from joblib import delayed

        drawn = workers(delayed(draw)(report, view) for view in every)
    *views, claim_paths = drawn
    paths = [path for paths in views for path in paths]
    for stale in set(CAPTIONS) - {p.stem for p in paths}:  # an earlier report's, not drawn now
        (report.out / f"{stale}.png").unlink(missing_ok=True)
    write_page(report, paths, claims_section(report.sweep_dir, [p.name for p in claim_paths]))
    return report.out


def number(x: float, digits: int = 3) -> str:
    """A value to `digits` significant digits (0.000123, 0.987, 1.2e-05); n/a for NaN."""
    return f"{x:.{digits}g}" if math.isfinite(x) else "n/a"


def pm(g: Group, metric: str) -> str:
    """The mean ± std across seeds of a configuration's metric, in significant digits: the
    losses of a good grid are 0.0001 and less, which 4 decimals would print as 0.0001 ± 0.0000."""
    return f"{number(g.mean(metric))} ± {number(g.std(metric), 2)}"


def write_page(r: Report, paths: list[Path], claims: str = "") -> Path:
    """index.html: the Claims section (`claims`, its html), the best configuration, a table
    of the best ones, then every figure."""
    ranked = r.ranked
    head = [*r.swept, "seeds ok", "val_loss", "val_accuracy", "test_accuracy", "n_params"]
    cells = [
        [
            *(g.config.get(k) for k in r.swept),
            f"{len(g.ok)}/{len(g.runs)}",
            pm(g, "val_loss"),
            pm(g, "val_accuracy"),
            pm(g, "test_accuracy"),
            g.ok[0]["n_params"],
        ]
        for g in ranked[:TOP]
    ]
    best, name = ranked[0], html.escape(page.sweep_name(r.sweep_dir))
    body = f"""{claims}
<p>Best configuration: <b>{html.escape(best.describe(r.swept))}</b>,
val_loss {pm(best, "val_loss")} (mean ± std across seeds).</p>
<p>{html.escape(r.context)}. Every job: <a href="../{RESULTS_FILE}">{RESULTS_FILE}</a>.</p>
<h2>The best configurations by mean val_loss</h2>
{page.table(head, cells)}
{page.images(paths, CAPTIONS)}"""
    return page.write(r.out / "index.html", f"Report: {name}", f"Grid report: {name}", body, 1400)


def log_to_wandb(sweep_dir: Path, logger_cfg: Any) -> None:
    """One wandb run (job_type report) with the report's figures and the results table."""
    import wandb

    from src.run.loggers import start_wandb_run

    sweep_dir = Path(sweep_dir)
    results = collect(sweep_dir)
    columns = list(dict.fromkeys(k for row in results for k in row))
    place = report_run(sweep_dir)
    remove_report_run(sweep_dir)  # a resumed sweep's report replaces the one before
    start_wandb_run(
        logger_cfg,
        id=place.id,
        job_type="report",
        name=f"report {sweep_dir.name}",
        dir=str(place.root),
    )
    try:
        data = [[row.get(k) for k in columns] for row in results]
        table = wandb.Table(columns=columns, data=data, allow_mixed_types=True)
        pngs = sorted((sweep_dir / REPORT_DIR).glob("*.png"))
        wandb.log({"results": table, **{p.stem: wandb.Image(str(p)) for p in pngs}})
    finally:
        wandb.finish()


def arguments() -> ArgumentParser:
    """`python -m src.report`'s arguments: the sweep folder and the grid's options."""
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
    return parser


def main(argv: list[str] | None = None) -> int:
    """Draw the grid's report of a sweep (src/report/__main__.py sends a search elsewhere)."""
    args = arguments().parse_args(argv)
    start = time.perf_counter()
    running = holder(args.sweep_dir)
    if running:
        print(f"the sweep is running ({running}): drawing what has finished", file=sys.stderr)
    try:
        out = write_report(args.sweep_dir, args.rows, args.cols, args.seed, facet=args.facet)
    except (SweepError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # a read-only folder, a full disk: what could not be written
        reason = error.strerror or str(error)
        code = f" ({errno.errorcode[error.errno]})" if error.errno in errno.errorcode else ""
        where = f"{error.filename}: " if error.filename is not None else ""
        print(f"error: {where}{reason}{code}; the report is not complete", file=sys.stderr)
        return 2
    for text in claim_lines(read_claims(args.sweep_dir)):
        print(text)
    print(f"{left_out(read_results(args.sweep_dir))}: {args.sweep_dir / RESULTS_FILE}")
    print(f"report: {out / 'index.html'} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
