"""Hydra callbacks that run once around a whole multirun."""

from __future__ import annotations

import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.runs import METRICS_FILE, read_metrics

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    """Counts the sweep's jobs by status at the end; exits 1 if any job failed."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        records = {p.parent: read_metrics(p.parent) for p in sorted(sweep_dir.rglob(METRICS_FILE))}
        counts = Counter(r.get("status", "unknown") for r in records.values())
        summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        log.info(f"{sum(counts.values())} jobs in {sweep_dir}: {summary}")
        failed = [d for d, r in records.items() if r.get("status") == "failed"]
        for job_dir in failed:
            log.error(f"failed: {job_dir.relative_to(sweep_dir)}: {records[job_dir].get('error')}")
        if failed:
            sys.exit(1)
