"""The report at the end of every multirun (a Hydra callback, `hydra.callbacks.report`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.report.claims import claim_lines, read_claims
from src.report.grid import log_to_wandb, write_report
from src.report.workers import pool
from src.sweep.progress import sweep_state
from src.sweep.space import is_search

log = logging.getLogger(__name__)


def write_search_report(sweep_dir: Path) -> Path:
    from src.report.study import write_search_report as write  # matplotlib, optuna: by a worker

    return write(sweep_dir)


def by_worker(workers: Any, task: Callable, *args: Any) -> Any:
    """`task(*args)`, by one of the sweep's idle `workers` if it has some, else here."""
    if workers is None:
        return task(*args)
    from joblib import delayed

    (result,) = workers([delayed(task)(*args)])
    return result


class GridReport(Callback):
    """Writes results.csv and the report (a grid's, src/report/grid.py, or a search's,
    src/report/study.py) into the sweep folder at the end; logs them as one wandb run when
    the wandb logger is on. Never fails the sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        search = is_search(sweep_state(sweep_dir))
        try:  # the figures are drawn by the sweep's idle workers, if it has some
            workers = pool(OmegaConf.select(config, "hydra.launcher"))
            if search:
                report_dir = by_worker(workers, write_search_report, sweep_dir)
            else:
                report_dir = write_report(sweep_dir, workers=workers)
        except Exception as error:  # results.csv is written first, so it survives this
            log.error(f"report not written: {type(error).__name__}: {error}")
            return
        log.info(f"report: {report_dir / 'index.html'}")
        if not search:
            for text in claim_lines(read_claims(sweep_dir)):
                print(text)
        if config.get("logger") and config.logger.get("kind") == "wandb":
            try:  # by a worker, if there is one: it has wandb and its service running already
                by_worker(workers, log_to_wandb, sweep_dir, config.logger)
            except Exception as error:
                log.error(f"report not logged to wandb: {type(error).__name__}: {error}")
