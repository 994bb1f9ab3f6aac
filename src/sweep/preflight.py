"""Before the first job of a multirun, whatever its launcher: `SweepCheck` (a Hydra callback)
refuses bad launcher settings, a bad stacking switch, wandb online without a login or a
server, a sweep folder that cannot be made and a resume into a folder made by a different
sweep, and records how many jobs the sweep plans; `mark_unfinished` records the jobs in flight
as failed if the sweep is cut short, and removes their wandb runs.
"""

from __future__ import annotations

import atexit
import dataclasses
import itertools
import logging
import math
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
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
from src.sweep.space import check_search_space, is_search, search_space, trial_seeds

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


def grid_arguments(config: DictConfig) -> list[list[str]]:
    """Each grid's overrides: `hydra.sweeper.params`, with one of `hydra.sweeper.grids` added
    when it has grids (the sweep is their union), then the command line's."""
    sweeper = config.hydra.sweeper
    params = dict(sweeper.get("params") or {})
    task = list(config.hydra.overrides.task)
    grids = sweep_grids(sweeper.get("grids")) or [{}]
    return [[f"{k}={v}" for k, v in {**params, **grid}.items()] + task for grid in grids]


def plan(config: DictConfig) -> tuple[int | None, list[str]]:
    """How many runs the sweep will write (the grid's size, or the union of its grids', or the
    search's trials times their seeds), and which keys it varies."""
    sweeper = config.hydra.sweeper
    if is_search(sweeper):
        seeds = len(trial_seeds(config, sweeper.seed_key))
        swept = sorted(k for k in search_space(config) if k != sweeper.seed_key)
        return int(sweeper.n_trials) * seeds, swept
    grids = grid_arguments(config)
    values: dict[str, set[str]] = {}  # every key's values over all grids
    swept: dict[str, None] = {}
    runs: set[frozenset[str]] | None = set()
    for arguments in grids:
        choices: dict[str, list[str]] = {}  # a key given twice: the later values win
        for override in OverridesParser.create().parse_overrides(arguments):
            key = override.get_key_element()
            if override.is_sweep_override():
                swept[key] = None
            if not override.is_sweep_override():
                choices[key] = [override.get_value_element_as_str()]
            elif override.is_discrete_sweep():
                choices[key] = list(override.sweep_string_iterator())
            else:
                runs = None
        for key, choice in choices.items():
            values.setdefault(key, set()).update(choice)
        if runs is not None and len(grids) == 1:  # one grid: its size, without listing it
            return math.prod(len(c) for c in choices.values()), list(swept)
        if runs is not None:  # a job in two grids runs once
            keys = list(choices)
            runs |= {frozenset(zip(keys, job)) for job in itertools.product(*choices.values())}
    swept.update((k, None) for k, v in values.items() if len(v) > 1)
    return (None if runs is None else len(runs)), list(swept)


def check_grid_values(config: DictConfig) -> None:
    """Refuse a grid key swept over no value (an empty sweep) or over one value twice (two
    jobs into one folder; a seed twice in one stack), and grids that are no list of mappings."""
    arguments = [a for grid in grid_arguments(config) for a in grid]
    for override in OverridesParser.create().parse_overrides(arguments):
        if not override.is_discrete_sweep():
            continue
        values = list(override.sweep_string_iterator())
        text = override.input_line.split("=", 1)[-1] if override.input_line else "?"
        if not values:
            raise ConfigError(override.get_key_element(), text, "a sweep over at least one value")
        if len(set(values)) < len(values):
            raise ConfigError(override.get_key_element(), text, "a sweep over distinct values")


def _sweep_signature(config: DictConfig) -> dict[str, Any]:
    """What two sweeps must share to write into one folder: the sweeper, the overridden keys,
    and the values of the keys that are not swept (which jobs exist may differ)."""
    fixed, swept = {}, []
    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        key = override.get_key_element()
        if override.is_sweep_override():
            swept.append(key)
        else:
            fixed[key] = override.get_value_element_as_str()
    return {"sweeper": config.hydra.sweeper.get("kind"), "swept": sorted(swept), "fixed": fixed}


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


def check_kind(sweeper: DictConfig) -> None:
    """Refuse a `kind` other than the sweeper settings' own (its dataclass's default): the
    checks, the plan, the jobs and the report would take the sweep for another kind."""
    settings = OmegaConf.get_type(sweeper)
    if dataclasses.is_dataclass(settings) and "kind" in sweeper:
        own = {f.name: f.default for f in dataclasses.fields(settings)}.get("kind")
        if sweeper.kind != own:
            raise ConfigError("hydra.sweeper.kind", sweeper.kind, f"{own} (its sweeper's)")


def check_stacking(config: DictConfig) -> None:
    """Refuse a stacking switch that is not a boolean, and watching gradients of a stack."""
    sweeper = config.hydra.sweeper
    if "stack_seeds" not in sweeper:
        return
    if not isinstance(sweeper.stack_seeds, bool):
        raise ConfigError("hydra.sweeper.stack_seeds", sweeper.stack_seeds, "true or false")
    watch = OmegaConf.select(config, "logger.watch")
    if sweeper.stack_seeds and watch and "seed" in plan(config)[1]:
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
    if before != now:
        changed = ", ".join(k for k in before if before[k] != now[k])
        raise ConfigError(
            "hydra.sweep.dir",
            str(sweep_dir),
            f"a folder of the same sweep (this one differs in: {changed}); choose a new folder",
        )
    return sum(1 for p in sweep_files(sweep_dir) if finished_metrics(p.parent))


class SweepCheck(Callback):
    """Before the first job: refuse bad settings with one line (exit 2), and plan the sweep."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        with stop_on_full_disk(sweep_dir, mark_unfinished):  # the lock's or state's write
            already, total = check_and_plan(config, sweep_dir)
        launcher = config.hydra.launcher._target_.rsplit(".", 1)[-1]
        resumed = f"; {already} finished runs found there, skipped" if already else ""
        runs = f"{total} run{'s' if total != 1 else ''}" if total else "an unknown number of runs"
        log.info(f"Sweep of {runs} into {sweep_dir} ({launcher}){resumed}")
        # If the sweep is cut short (a worker killed or crashed, a signal), the jobs in
        # flight must show up as failed rather than vanish: mark them on the way out.
        atexit.register(mark_unfinished, sweep_dir)
        end_sweep_on_signals(sweep_dir, mark_unfinished)


def check_and_plan(config: DictConfig, sweep_dir: Path) -> tuple[int, int | None]:
    """Refuse bad settings (one line, exit 2), take the folder's lock and write the sweep's
    state; returns how many runs finished before and how many the sweep plans."""
    try:
        check_kind(config.hydra.sweeper)
        check_launcher(config.hydra.launcher)
        check_keys(config)  # an unknown key and a logger wandb would refuse: not per job
        check_logger(config.logger)
        check_stacking(config)
        if is_search(config.hydra.sweeper):  # a search: its space, before anything else
            check_search_space(config)
        else:
            check_grid_values(config)
        check_wandb_online(config.logger, sweep_dir)  # once: not a wait in every job
        make_folder("hydra.sweep.dir", sweep_dir)  # once the settings pass: no folder before
        lock_sweep(sweep_dir)  # before reading what is there: of two sweeps, one goes on
        already = check_resume(sweep_dir, config)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    total, swept = plan(config)
    write_state(sweep_dir, total, swept, config.hydra.sweeper)
    index_records(sweep_dir)  # what the jobs' progress lines count
    remove_seed_runs(sweep_dir, unrecorded_jobs(sweep_dir))  # a killed sweep's, cut short
    return already, total


def write_state(
    sweep_dir: Path, total: int | None, swept: list[str], sweeper: DictConfig | None = None
) -> None:
    """The sweep's state file, read by its jobs and its report: its kind (grid or search), seed
    and stack keys, the planned total, the swept keys, the start time and pid of this process,
    and the sweep's id (random, kept across resumes: it makes the sweep's wandb run ids its own)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    sweep_id = sweep_state(sweep_dir).get("id") or uuid.uuid4().hex
    keys = {k: (sweeper or {}).get(k) for k in ("kind", "seed_key", "stack_key")}
    state = {**keys, "total": total, "swept": swept, "started": time.time(), "pid": os.getpid()}
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
