"""Before the first job of a multirun, whatever its sweeper and launcher: the checks its
sweeper runs (launcher settings, unknown keys, a resume into a folder made by another sweep),
and `open_sweep`, which makes and locks its folder and writes the sweeper's `Plan` to
.sweep.json; `mark_unfinished` records the jobs in flight as failed if the sweep is cut short,
and removes their wandb runs.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from src.errors import INT64_MAX, ConfigError, require_int, require_number
from src.folders import make_folder
from src.run.files import METRICS_FILE, sweep_files, write_json_atomic
from src.run.validation import check_keys, check_logger, check_wandb_online
from src.sweep.jobs import finished_metrics
from src.sweep.lifetime import end_sweep_on_signals, stop_on_full_disk
from src.sweep.lock import lock_sweep
from src.sweep.progress import STATE_FILE, index_records, note_record, sweep_state
from src.sweep.runs import remove_seed_runs

log = logging.getLogger(__name__)
N_JOBS_ALLOWED = "an integer from 1 to 2**63-1, or -1 for all cores (-2: all but one, ...)"


def sweep_grids(grids: Any) -> list[dict[str, str]] | None:
    """`hydra.sweeper.grids` as params dicts, None when it has none; a ConfigError if it is
    no list of mappings. A boolean is written as Hydra reads it (false, not False)."""
    if grids is None:
        return None
    grids = OmegaConf.to_container(grids) if OmegaConf.is_config(grids) else grids
    if not isinstance(grids, list) or not grids or not all(isinstance(g, dict) for g in grids):
        raise ConfigError("hydra.sweeper.grids", grids, "a list of {key: values} mappings")
    text = {True: "true", False: "false"}
    return [
        {str(k): text[v] if isinstance(v, bool) else str(v) for k, v in grid.items()}
        for grid in grids
    ]


def check_grid_values(overrides: list[Override]) -> None:
    """Refuse a grid key swept over no value (an empty sweep) or over one value twice (two
    jobs into one folder; a seed twice in one stack)."""
    for override in overrides:
        if not override.is_discrete_sweep():
            continue
        values = list(override.sweep_string_iterator())
        text = override.input_line.split("=", 1)[-1] if override.input_line else "?"
        if not values:
            raise ConfigError(override.get_key_element(), text, "a sweep over at least one value")
        if len(set(values)) < len(values):
            raise ConfigError(override.get_key_element(), text, "a sweep over distinct values")


SWEPT = object()  # a key's value in a sweep's signature when it is swept
KIND = "hydra.sweeper.kind"


def _sweep_signature(config: DictConfig) -> dict[str, Any]:
    """What two sweeps must share to write into one folder: the sweeper's kind, the overridden
    keys, and the values of the keys that are not swept (which jobs exist may differ)."""
    signature: dict[str, Any] = {KIND: config.hydra.sweeper.get("kind")}
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        key = override.get_key_element()
        swept = override.is_sweep_override()
        signature[key] = SWEPT if swept else override.get_value_element_as_str()
    return signature


# Each launcher setting's rule, by its key (joblib's n_jobs, the cluster launchers' own): a
# launcher is checked on the keys it has, whichever class it is.
LAUNCHER_INTS = {
    "workers": 1, "retries": 0, "timeout_min": 1,
    "cpus_per_task": 1, "gpus_per_node": 0, "tasks_per_node": 1, "nodes": 1,
    "array_parallelism": 1,
}  # fmt: skip
LAUNCHER_NUMBERS = ("death_timeout_s", "mem_gb")  # positive
LAUNCHER_OPTIONAL = ("cpus_per_task", "gpus_per_node", "tasks_per_node", "nodes", "mem_gb",
                     "array_parallelism")  # fmt: skip


def check_launcher(launcher: DictConfig) -> None:
    """Refuse launcher settings the launcher would only trip over later."""
    if "n_jobs" in launcher:
        n_jobs = launcher.n_jobs
        is_int = isinstance(n_jobs, int) and not isinstance(n_jobs, bool)
        if not is_int or n_jobs == 0 or abs(n_jobs) > INT64_MAX:
            raise ConfigError("hydra.launcher.n_jobs", n_jobs, N_JOBS_ALLOWED)
    if "port" in launcher:
        require_int("hydra.launcher.port", launcher.port, 0, 65535)
    for key in [k for k in (*LAUNCHER_INTS, *LAUNCHER_NUMBERS) if k in launcher]:
        value = launcher[key]
        if value is None and key in LAUNCHER_OPTIONAL:
            continue
        if key in LAUNCHER_NUMBERS:
            require_number(f"hydra.launcher.{key}", value, positive=True)
        else:
            require_int(f"hydra.launcher.{key}", value, LAUNCHER_INTS[key], INT64_MAX)


def check_settings(config: DictConfig) -> None:
    """Refuse what no job could run with (raises ConfigError): launcher settings, an unknown key,
    a logger wandb would refuse. Once for the sweep: not in every job."""
    check_launcher(config.hydra.launcher)
    check_keys(config)
    check_logger(config.logger)


def check_stacking(config: DictConfig, stacks_seeds: bool) -> None:
    """Refuse watching gradients of a stack of seeds (its histograms would mix the seeds)."""
    if stacks_seeds and OmegaConf.select(config, "logger.watch"):
        raise ConfigError(
            "logger.watch",
            True,
            "false when seeds are stacked (its histograms would mix the seeds); "
            "add hydra.sweeper.stack_seeds=false",
        )


def check_resume(sweep_dir: Path, config: DictConfig) -> int:
    """Refuse to resume into a folder made by another sweep; return how many jobs finished."""
    previous = sweep_dir / "multirun.yaml"
    if not previous.exists():
        return 0
    before, now = _sweep_signature(OmegaConf.load(previous)), _sweep_signature(config)
    if before[KIND] is None:  # written before sweepers had a kind: its hparams_search tells
        before[KIND] = now[KIND]
    if before != now:
        changed = ", ".join(k for k in {**before, **now} if before.get(k) != now.get(k))
        raise ConfigError(
            "hydra.sweep.dir",
            str(sweep_dir),
            f"a folder of the same sweep (this one differs in: {changed}); choose a new folder",
        )
    return sum(1 for p in sweep_files(sweep_dir) if finished_metrics(p.parent))


@dataclass
class Plan:
    """What a sweep will run, as its sweeper planned it (written to .sweep.json)."""

    kind: str  # grid | search
    seed_key: str  # the key whose values are a configuration's repetitions
    stack_key: str  # the key a stacked job gets its seeds in, as a list
    total: int  # runs the sweep will write: every seed of every job
    swept: list[str]  # the keys it varies
    jobs: list[list[str]] | None = None  # a grid's jobs' overrides, in launch order


def open_sweep(config: DictConfig, plan: Plan, launcher: str) -> Path:
    """Make and lock the sweep's folder, refuse a resume of another sweep into it (one line,
    exit 2), write the plan, and have a sweep cut short record its jobs in flight as failed."""
    sweep_dir = Path(config.hydra.sweep.dir)
    with stop_on_full_disk(sweep_dir, mark_unfinished):  # the lock's or state's write
        try:
            check_wandb_online(config.logger, sweep_dir)  # once: not a wait in every job
            make_folder("hydra.sweep.dir", sweep_dir)  # once the settings pass: no folder before
            lock_sweep(sweep_dir)  # before reading what is there: of two sweeps, one goes on
            already = check_resume(sweep_dir, config)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        write_state(sweep_dir, plan)
        index_records(sweep_dir)  # what the jobs' progress lines count
        remove_seed_runs(sweep_dir, unrecorded_jobs(sweep_dir))  # a killed sweep's, cut short
    resumed = f"; {already} finished runs found there, skipped" if already else ""
    runs = f"{plan.total} run{'s' if plan.total != 1 else ''}"
    log.info(f"Sweep of {runs} into {sweep_dir} ({launcher}){resumed}")
    # If the sweep is cut short (a worker killed or crashed, a signal), the jobs in
    # flight must show up as failed rather than vanish: mark them on the way out.
    atexit.register(mark_unfinished, sweep_dir)
    end_sweep_on_signals(sweep_dir, mark_unfinished)
    return sweep_dir


def write_state(sweep_dir: Path, plan: Plan) -> None:
    """The sweep's state file, read by its jobs and its report: its plan, the start time and pid
    of this process, and the sweep's id (random, kept across resumes: it makes the sweep's
    wandb run ids its own)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sweep_id = sweep_state(sweep_dir).get("id") or uuid.uuid4().hex
    state = {**dataclasses.asdict(plan), "started": time.time(), "pid": os.getpid()}
    write_json_atomic(sweep_dir / STATE_FILE, {**state, "id": sweep_id})  # a full disk: kept


def unrecorded_jobs(sweep_dir: Path) -> list[Path]:
    """Every started job of the sweep (its `.hydra/` written) that has no metrics.json."""
    return [
        overrides.parent.parent
        for overrides in sweep_files(sweep_dir, "overrides.yaml")
        if overrides.parent.name == ".hydra"
        and not (overrides.parent.parent / METRICS_FILE).exists()
    ]


KILLED = "its process ended before the job finished (killed or crashed); rerun the sweep"


def mark_unfinished(sweep_dir: Path, quiet: bool = False, error: str = KILLED) -> list[Path]:
    """Record every started job of the sweep that has no metrics.json as failed with `error`,
    and remove its wandb run (cut short: not a result to upload); returns the jobs recorded.
    A record the disk does not take (it is full) is left out: the job has none, as before."""
    unfinished = unrecorded_jobs(sweep_dir)
    remove_seed_runs(sweep_dir, unfinished)
    recorded = []
    for job_dir in unfinished:
        try:
            write_json_atomic(job_dir / METRICS_FILE, {"status": "failed", "error": error})
        except OSError:
            continue
        note_record(sweep_dir, job_dir)
        recorded.append(job_dir)
        if not quiet:
            print(f"failed: {job_dir.relative_to(sweep_dir)}: {error}", file=sys.stderr)
    return recorded
