"""Hydra callbacks that run once around a whole multirun.

Hydra calls the `on_multirun_end` hooks in the reverse order of `hydra.callbacks`, so
conf/train.yaml lists `summary` first: the report is written before the summary, whose
exit status 1 on failed jobs stays the last thing that happens.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.report import log_to_wandb, write_report
from src.runs import read_metrics, sweep_files
from src.workers import pool

log = logging.getLogger(__name__)


class GridReport(Callback):
    """Writes results.csv and the report (src/report.py) into the sweep folder at the end;
    logs them as one wandb run when the wandb logger is on. Never fails the sweep."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:  # the figures are drawn by the sweep's idle workers, if it has some
            workers = pool(OmegaConf.select(config, "hydra.launcher"))
            report_dir = write_report(sweep_dir, workers=workers)
        except Exception as error:  # results.csv is written first, so it survives this
            log.error(f"report not written: {type(error).__name__}: {error}")
            return
        log.info(f"report: {report_dir / 'index.html'}")
        if config.get("logger") and config.logger.get("kind") == "wandb":
            try:  # by a worker, if there is one: it has wandb and its service running already
                if workers is None:
                    log_to_wandb(sweep_dir, config.logger)
                else:
                    from joblib import delayed

                    workers([delayed(log_to_wandb)(sweep_dir, config.logger)])
            except Exception as error:
                log.error(f"report not logged to wandb: {type(error).__name__}: {error}")


class SweepSummary(Callback):
    """Counts the sweep's jobs by status at the end; exits 1 if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        # read_metrics checks each record: a malformed one is counted and named as failed.
        records = {p.parent: read_metrics(p.parent) for p in sorted(sweep_files(sweep_dir))}
        records = {d: r for d, r in records.items() if r is not None}  # removed meanwhile
        counts = Counter(r["status"] for r in records.values())
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        log.info(f"{sum(counts.values())} jobs in {sweep_dir}: {summary}")
        failed = [d for d, r in records.items() if r.get("status") == "failed"]
        for job_dir in failed:
            log.error(f"failed: {job_dir.relative_to(sweep_dir)}: {records[job_dir].get('error')}")
        # The process exits next: frozen objects are not walked by the collection at exit,
        # which otherwise costs about a second with torch, wandb and matplotlib loaded.
        gc.freeze()
        if failed:
            sys.exit(1)
