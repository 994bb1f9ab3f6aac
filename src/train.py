"""Train MLPs on generated data: one run, the seeds of one configuration as one stack, or a sweep.

    python -m src.train model.depth=3 model.width=10           # one run
    python -m src.train 'seeds=[0,1,2]'                        # three seeds, one stacked model
    python -m src.train -m model.depth=0,1,2 'seed=range(6)'   # a sweep: a job per depth

The Hydra entry point: a run is `single_run`, one job of a sweep `sweep_job`; both train their
seeds as one stack with src.run.training's train_stack.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from src.errors import ConfigError, exit_on_config_error
from src.folders import refuse_file_in_place
from src.run.files import (
    METRICS_FILE,
    member_dir,
    no_space,
    register_resolvers,
    remove_unused_run_dir,
    write_error,
    write_json_atomic,
)
from src.run.schema import STACK_KEY
from src.run.training import is_multirun, objective, train_stack
from src.run.validation import check_wandb_online, validate
from src.sweep.jobs import (
    clear_attempt,
    close_member_log,
    finished_metrics,
    member_log,
    member_overrides,
    quiet_on_full_disk,
    seed_dirs,
    trial_settings,
    wandb_places,
    write_member_record,
)
from src.sweep.progress import note_record, progress_lines

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


def sweep_job(cfg: DictConfig) -> float | list[float]:
    """One job of a multirun: one seed, or a stack of seeds (`seeds=[...]`) written one folder
    each. A seed an earlier attempt finished is not written again (a stack is retrained whole,
    so that its numbers are those of an uninterrupted sweep), and no job is fatal to the
    sweep: a refused or crashed one is recorded as failed and the next one starts. A full
    disk is raised: the sweep's main process ends the sweep (src.sweep.lifetime)."""
    hydra_cfg = HydraConfig.get()
    sweep_dir, task = Path(hydra_cfg.sweep.dir), list(hydra_cfg.overrides.task)
    for handler in logging.getLogger().handlers:  # the job's train.log, as Hydra set it up
        quiet_on_full_disk(handler)
    dirs = seed_dirs(cfg, Path(cfg.output_dir))
    seeds, stacked = list(dirs), cfg.get(STACK_KEY) is not None
    results = {s: m for s, m in ((s, finished_metrics(d)) for s, d in dirs.items()) if m}
    todo = {s: d for s, d in dirs.items() if s not in results}
    logs = dict.fromkeys(todo, log)
    for seed, job_dir in todo.items():
        clear_attempt(job_dir, sweep_dir)
        if stacked:
            write_member_record(cfg, seed, job_dir, member_overrides(task, seed))
            logs[seed] = member_log(job_dir, seed)
    if todo:
        results.update(_train_sweep_seeds(cfg, seeds, todo, hydra_cfg))
        for job_dir in todo.values():
            if (job_dir / METRICS_FILE).exists():  # not one whose record could not be written
                note_record(sweep_dir, job_dir)
        runs = [(member_overrides(task, seed), results[seed]) for seed in todo]
        for seed, line in zip(todo, progress_lines(sweep_dir, runs)):
            logs[seed].info(line)
            if stacked:
                close_member_log(logs[seed])
    objectives = [objective(results[s]) for s in seeds]
    return objectives if stacked else objectives[0]


def _train_sweep_seeds(cfg: DictConfig, seeds, todo: dict, hydra_cfg) -> dict[int, dict]:
    """Each seed's record: trained, or failed with the error its job raised (a full disk is
    raised on: the sweep's main process stops the sweep and records it)."""
    places = wandb_places(hydra_cfg, todo)
    try:
        return train_stack(cfg, seeds, todo, wandb_places=places, **trial_settings(hydra_cfg))
    except Exception as error:
        if no_space(error):
            raise
        if not isinstance(error, ConfigError):  # a bug: keep its traceback in the job's log
            log.exception("job failed")
        failed = {"status": "failed", "error": str(error)}
        for job_dir in todo.values():
            job_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(job_dir / METRICS_FILE, failed)
        return dict.fromkeys(todo, failed)


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
