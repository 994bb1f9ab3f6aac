"""The records of a multirun job's seeds (src.train's sweep_job), each in its own `seed=<k>/`
folder as a single run's would be.

A seed an earlier attempt finished is skipped (`finished_metrics`); what a killed attempt
left is cleared (`clear_attempt`), so a retrained job ends with one wandb run. Every seed's
wandb run goes to `<sweep>/wandb/`, under an id that reads as its configuration and seed
(src/sweep/runs.py). A job a cluster lost is recorded here too (`lost_job`).
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.run.files import METRICS_FILE, member_dir, no_space, read_metrics, write_json_atomic
from src.run.loggers import WandbPlace
from src.run.schema import SEED_KEY, STACK_KEY
from src.sweep.progress import (
    forget_record,
    note_record,
    override_key,
    progress_lines,
    settings,
    sweep_state,
)
from src.sweep.runs import remove_seed_runs, seed_run
from src.sweep.space import is_search

log = logging.getLogger(__name__)
SEED_KEYS = (SEED_KEY, STACK_KEY)


def seed_dirs(cfg: DictConfig, output_dir: Path) -> dict[int, Path]:
    """Each seed of the job and its folder: `seed=<k>/` of a stack, the job's own otherwise."""
    if cfg.get(STACK_KEY) is None:
        return {cfg[SEED_KEY]: output_dir}
    return {s: member_dir(output_dir, s) for s in cfg[STACK_KEY]}


def report_job(result: Any) -> None:
    """In the sweep's main process, for a job another machine ran (SLURM): the progress line
    of each of its seeds, as the job printed it into its own log."""
    out = Path(result.hydra_cfg.hydra.runtime.output_dir)
    task = list(result.overrides)
    runs = [
        (member_overrides(task, s), read_metrics(d) or {"status": "failed"})
        for s, d in seed_dirs(result.cfg, out).items()
    ]
    for line in progress_lines(Path(result.hydra_cfg.hydra.sweep.dir), runs):
        log.info(line)


def record_failed(
    cfg: DictConfig, task_overrides: list[str], sweep_dir: Path, error: str
) -> list[int]:
    """Record each seed of a job that no process will finish (its SLURM task was ended) as
    failed with `error`, laid out as the job would have (its `.hydra/` record included), its
    cut-short wandb run removed; returns the job's seeds. A finished seed keeps its record."""
    dirs = seed_dirs(cfg, Path(cfg.output_dir))
    for seed, job_dir in dirs.items():
        if finished_metrics(job_dir):
            continue
        write_member_record(cfg, seed, job_dir, member_overrides(task_overrides, seed))
        remove_seed_runs(sweep_dir, [job_dir])
        write_json_atomic(job_dir / METRICS_FILE, {"status": "failed", "error": error})
        note_record(sweep_dir, job_dir)
    return list(dirs)


def trial_settings(hydra_cfg: DictConfig) -> dict[str, Any]:
    """For a search's trial: its wandb group (the trial, in this sweep) and, when the search
    prunes, the callback that reports each epoch to the study; nothing for a grid's job."""
    sweep_dir, number = Path(hydra_cfg.sweep.dir), hydra_cfg.job.num
    if not is_search(sweep_state(sweep_dir)):
        return {}
    settings: dict[str, Any] = {"group": f"{sweep_dir.parent.name}/{sweep_dir.name}/trial={number}"}
    if hydra_cfg.sweeper.pruner is not None:
        from src.sweep.pruning import TrialPruning  # Lightning and Optuna: in the worker only

        settings["callbacks"] = [TrialPruning(hydra_cfg.sweeper, sweep_dir, number)]
    return settings


def wandb_places(hydra_cfg: DictConfig, seed_dirs: dict[int, Path]) -> dict[int, WandbPlace]:
    """Each seed's wandb run: in `<sweep>/wandb/`, its id read as the job's swept settings (a
    search's trial: its folder, `trial=<n>`) and the seed."""
    sweep_dir = Path(hydra_cfg.sweep.dir)
    plan = sweep_state(sweep_dir)
    if is_search(plan):
        job = [Path(hydra_cfg.runtime.output_dir).name]
    else:
        task = [o for o in hydra_cfg.overrides.task if override_key(o) not in SEED_KEYS]
        job = settings(task, plan.get("swept"))
    return {seed: seed_run(sweep_dir, d, job, seed) for seed, d in seed_dirs.items()}


FINISHED = ("ok", "diverged", "pruned")  # a job with one of these statuses is not trained again


def member_overrides(task_overrides: list[str], seed: int) -> list[str]:
    """A stacked job's overrides as a single run of `seed` would have had them: its seeds
    (`++seeds=[...]`, where the seed override stood) become `seed=<seed>`."""
    member = f"{SEED_KEY}={seed}"
    return [member if override_key(o) == STACK_KEY else o for o in task_overrides]


def write_member_record(cfg: DictConfig, seed: int, job_dir: Path, overrides: list[str]) -> None:
    """A stacked seed's `.hydra/` (its resolved config and its overrides), as Hydra writes a
    single run's: results.csv and resume find the seed's folder as they find any job's."""
    record = job_dir / ".hydra"
    record.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    config.update({SEED_KEY: seed, STACK_KEY: None, "output_dir": str(job_dir)})
    OmegaConf.save(OmegaConf.create(config), record / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), record / "overrides.yaml")


def member_log(job_dir: Path, seed: int) -> logging.Logger:
    """A logger for one seed of a stacked job: its lines go to `<job_dir>/train.log`, and on
    to the stack's log and the console."""
    member = log.getChild(f"seed={seed}")
    handler = logging.FileHandler(job_dir / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    quiet_on_full_disk(handler)
    member.addHandler(handler)
    return member


def quiet_on_full_disk(handler: logging.Handler) -> None:
    """Have a log file on a full disk drop its lines (the console has them, and the sweep
    stops with one line) rather than print logging's traceback for each."""
    if not isinstance(handler, logging.FileHandler):
        return
    report = handler.handleError

    def handle_error(record: logging.LogRecord) -> None:
        if no_space(sys.exc_info()[1]) is None:
            report(record)

    handler.handleError = handle_error


def close_member_log(member: logging.Logger) -> None:
    for handler in list(member.handlers):
        member.removeHandler(handler)
        handler.close()


def finished_metrics(job_dir: Path) -> dict[str, Any] | None:
    """The job's metrics if an earlier attempt finished it (ok or diverged), else None; a
    malformed metrics.json (read_metrics makes it a failed record) is not finished."""
    metrics = read_metrics(job_dir)
    return metrics if metrics and metrics["status"] in FINISHED else None


def clear_attempt(job_dir: Path, sweep_dir: Path) -> None:
    """Remove what an unfinished attempt left: its metrics record and, in `<sweep>/wandb/`,
    its wandb run (cut short, or failed)."""
    record = job_dir / METRICS_FILE
    if record.exists():  # rarely: a resumed or retried job's
        forget_record(sweep_dir, job_dir)
        record.unlink(missing_ok=True)
    remove_seed_runs(sweep_dir, [job_dir])


def lost_job(config_loader, config, overrides: list[str], number: int, error: str) -> Any:
    """The JobReturn of a job a cluster kept from finishing (hydra/launcher=slurm's
    `job_lost`): each of its seeds that has no finished record gets a failed one with the
    cause, laid out as the job would have."""
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf, open_dict

    job = config_loader.load_sweep_config(config, list(overrides))
    with open_dict(job.hydra.job):
        job.hydra.job.num = number
    output_dir = Path(job.hydra.sweep.dir) / str(OmegaConf.select(job, "hydra.sweep.subdir"))
    with open_dict(job.hydra.runtime):
        job.hydra.runtime.output_dir = str(output_dir.absolute())
    HydraConfig.instance().set_config(job)  # as a launcher does: `output_dir` reads it
    task_cfg = OmegaConf.masked_copy(job, [k for k in job if k != "hydra"])
    seeds = record_failed(task_cfg, list(overrides), Path(job.hydra.sweep.dir), error)
    value = [math.inf] * len(seeds) if job.get(STACK_KEY) is not None else math.inf
    result = JobReturn(
        overrides=list(overrides),
        cfg=task_cfg,
        hydra_cfg=OmegaConf.create({"hydra": job.hydra}),
        status=JobStatus.COMPLETED,
        _return_value=value,
    )
    report_job(result)  # its FAILED line, as a job that ends prints its own
    return result
