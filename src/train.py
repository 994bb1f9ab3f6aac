"""Train MLPs on generated data: one run, the seeds of one configuration as one stack, or a sweep.

    python -m src.train model.depth=3 model.width=10           # one run
    python -m src.train 'seeds=[0,1,2]'                        # three seeds, one stacked model
    python -m src.train -m model.depth=0,1,2 'seed=range(6)'   # a sweep: a job per depth

The Hydra entry point: a run is `single_run` (src.run.training's train_stack, then one line
per seed), one job of a sweep `src.sweep.jobs.sweep_job`.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from src.errors import ConfigError, exit_on_config_error
from src.folders import refuse_file_in_place
from src.run.files import member_dir, register_resolvers, remove_unused_run_dir, write_error
from src.run.training import is_multirun, objective, train_stack
from src.run.validation import check_wandb_online, validate
from src.sweep.jobs import sweep_job

register_resolvers()
log = logging.getLogger("src.train")  # not __main__: python -m runs this module as __main__


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | list[float]:
    """Hydra entry point; returns what a sweeper minimises (val_loss, inf for a failed run),
    one value per seed for a stack."""
    if is_multirun():
        return sweep_job(cfg)
    return exit_on_config_error(single_run)(cfg)


def single_run(cfg: DictConfig) -> float | list[float]:
    """One run, or one stack of seeds (`seeds=[...]`, each written to its `seed=<n>/`): trained,
    written, then one line per seed with its metrics and folder (on the console and in the
    run's train.log). A refused run leaves no output folder; a file that cannot be written
    ends it with one line on stderr and exit status 1."""
    out = Path(cfg.output_dir)
    try:
        validate(cfg)  # before the seeds are read: `seeds=5` is refused, not a TypeError
        refuse_file_in_place("output_dir", out)  # refused, not a write that fails
        check_wandb_online(cfg.logger, out)
        stacked = cfg.seeds is not None
        seeds = list(cfg.seeds) if stacked else [cfg.seed]
        dirs = {s: member_dir(out, s) for s in seeds} if stacked else {cfg.seed: out}
        results = train_stack(cfg, seeds, dirs)
    except ConfigError:
        remove_unused_run_dir(out)
        raise
    except OSError as error:  # a folder that cannot be made: a full disk, a read-only one
        _fail(write_error(error.filename or out, error))
    errors = [m["error"] for m in results.values() if m["status"] == "failed"]
    for seed, metrics in results.items():
        if metrics["status"] != "failed":
            log.info(summary_line(seed if stacked else None, metrics, dirs[seed]))
    if errors:
        _fail(*dict.fromkeys(errors))  # a full disk fails every seed alike: said once
    objectives = [objective(results[s]) for s in seeds]
    return objectives if stacked else objectives[0]


def summary_line(seed: int | None, metrics: dict[str, Any], folder: Path) -> str:
    """`seed=1: ok, val_loss 0.0123, ... -> outputs/...` (no seed for a single run)."""
    values = ", ".join(
        f"{key} {metrics[key]:.4g}"
        for key in ("val_loss", "val_accuracy", "test_loss", "test_accuracy")
    )
    where = os.path.relpath(folder) if folder.is_relative_to(Path.cwd()) else str(folder)
    prefix = f"seed={seed}: " if seed is not None else ""
    return f"{prefix}{metrics['status']}, {values}, in {where}"


def _fail(*errors: str) -> None:
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()
