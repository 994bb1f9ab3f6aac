"""The end of every multirun: its jobs counted by status; exit status 1 if one failed.

Hydra calls `on_multirun_end` hooks in reverse order: conf/train.yaml lists `summary` before
`report` so that this one, which sets the exit status, comes last.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.run.files import read_metrics, sweep_files

log = logging.getLogger(__name__)


class SweepSummary(Callback):
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
