"""What every multirun does, whatever its launcher: checks before the first job, resume, progress.

- `SweepCheck` (a Hydra callback) refuses bad launcher settings and a resume into a folder made
  by a different sweep, and records how many jobs the sweep plans.
- `finished_metrics` lets a job that already finished be skipped when a sweep is rerun into its
  own folder (`hydra.sweep.dir=<that folder>`); `clear_attempt` removes what a killed attempt
  left, so a retrained job ends with one wandb run.
- `progress_line` is the one line a job prints when it ends: `[37/252] ... ETA 3m10s`.
"""

from __future__ import annotations

import atexit
import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.config import ConfigError, require_int, require_number
from src.runs import METRICS_FILE, read_metrics, sweep_files, write_json_atomic

log = logging.getLogger(__name__)

STATE_FILE = ".sweep.json"  # in the sweep folder: planned job count and start time
FINISHED = ("ok", "diverged")  # a job with one of these statuses is not trained again


def plan(config: DictConfig) -> tuple[int | None, list[str]]:
    """How many jobs the sweep will launch (the grid's size, or the search's trial count),
    and which keys it varies."""
    sweeper = config.hydra.sweeper
    params = sweeper.get("params") or {}
    if "n_trials" in sweeper:
        return int(sweeper.n_trials), sorted(params)
    arguments = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    total, swept = 1, []
    for override in OverridesParser.create().parse_overrides(arguments):
        if override.is_sweep_override():
            swept.append(override.get_key_element())
            if total is not None and override.is_discrete_sweep():
                total *= len(list(override.sweep_string_iterator()))
            else:
                total = None
    return total, swept


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
    return {"sweeper": config.hydra.sweeper._target_, "swept": sorted(swept), "fixed": fixed}


def check_launcher(launcher: DictConfig) -> None:
    """Refuse launcher settings the launcher would only trip over later."""
    target = launcher.get("_target_", "").lower()
    if "joblib" in target:
        require_int("hydra.launcher.n_jobs", launcher.n_jobs)
        if launcher.n_jobs == 0:
            raise ConfigError("hydra.launcher.n_jobs", 0, "an integer >= 1, or -1 for all cores")
    if "submitit" in target:
        require_int("hydra.launcher.timeout_min", launcher.timeout_min, minimum=1)
        for key in ("cpus_per_task", "gpus_per_node", "tasks_per_node", "nodes"):
            if launcher.get(key) is not None:
                require_int(
                    f"hydra.launcher.{key}", launcher[key], minimum=0 if "gpus" in key else 1
                )
        if launcher.get("mem_gb") is not None:
            require_number("hydra.launcher.mem_gb", launcher.mem_gb, positive=True)
        if launcher.get("array_parallelism") is not None:
            require_int("hydra.launcher.array_parallelism", launcher.array_parallelism, minimum=1)


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
        try:
            check_launcher(config.hydra.launcher)
            check_stacking(config)
            if "n_trials" in config.hydra.sweeper:  # a search: its space, before anything else
                from src.search import check_search_space

                check_search_space(config)
            already = check_resume(sweep_dir, config)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        total, swept = plan(config)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        state = {"total": total, "swept": swept, "started": time.time()}
        (sweep_dir / STATE_FILE).write_text(json.dumps(state))
        launcher = config.hydra.launcher._target_.rsplit(".", 1)[-1]
        resumed = f", {already} already finished (skipped)" if already else ""
        log.info(f"Sweep of {total or '?'} jobs into {sweep_dir} ({launcher}){resumed}")
        # If the sweep is cut short (a worker killed or crashed, Ctrl-C), the jobs in flight
        # must show up as failed rather than vanish: mark them on the way out.
        atexit.register(mark_unfinished, sweep_dir)


def mark_unfinished(sweep_dir: Path) -> list[Path]:
    """Record every started job of the sweep that has no metrics.json as failed."""
    unfinished = [
        overrides.parent.parent
        for overrides in sweep_files(sweep_dir, "overrides.yaml")
        if overrides.parent.name == ".hydra"
        and not (overrides.parent.parent / METRICS_FILE).exists()
    ]
    error = "its process ended before the job finished (killed or crashed); rerun the sweep"
    for job_dir in unfinished:
        write_json_atomic(job_dir / METRICS_FILE, {"status": "failed", "error": error})
        print(f"failed: {job_dir.relative_to(sweep_dir)}: {error}", file=sys.stderr)
    return unfinished


def member_overrides(task_overrides: list[str], seed: int) -> list[str]:
    """A stacked job's overrides as a single run of `seed` would have had them: the seeds
    override (`++seeds=[...]`, where the seed override stood) becomes `seed=<seed>`."""
    return [
        f"seed={seed}" if o.split("=", 1)[0].lstrip("+~") == "seeds" else o for o in task_overrides
    ]


def write_member_record(cfg: DictConfig, seed: int, job_dir: Path, overrides: list[str]) -> None:
    """A stacked seed's `.hydra/` (its resolved config and its overrides), as Hydra writes a
    single run's: results.csv and resume find the seed's folder as they find any job's."""
    record = job_dir / ".hydra"
    record.mkdir(parents=True, exist_ok=True)
    config = OmegaConf.to_container(cfg, resolve=True)
    config.update(seed=seed, seeds=None, output_dir=str(job_dir))
    OmegaConf.save(OmegaConf.create(config), record / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), record / "overrides.yaml")


def member_log(job_dir: Path, seed: int) -> logging.Logger:
    """A logger for one seed of a stacked job: its lines go to `<job_dir>/train.log`, and on
    to the stack's log and the console."""
    member = log.getChild(f"seed={seed}")
    handler = logging.FileHandler(job_dir / "train.log")
    handler.setFormatter(logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"))
    member.addHandler(handler)
    return member


def close_member_log(member: logging.Logger) -> None:
    for handler in list(member.handlers):
        member.removeHandler(handler)
        handler.close()


def finished_metrics(job_dir: Path) -> dict[str, Any] | None:
    """The job's metrics if an earlier attempt finished it (ok or diverged), else None; a
    malformed metrics.json (read_metrics makes it a failed record) is not finished."""
    metrics = read_metrics(job_dir)
    return metrics if metrics and metrics["status"] in FINISHED else None


def clear_attempt(job_dir: Path) -> None:
    """Remove what an unfinished attempt left: its metrics record and its wandb run."""
    (job_dir / METRICS_FILE).unlink(missing_ok=True)
    shutil.rmtree(job_dir / "wandb", ignore_errors=True)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


# The ETA is the rate at which this run's jobs finish, over the interval from the first finish
# to the latest. Records written within SAME_MOMENT of the first are one finish (a stack writes
# its seeds one after another), and there is no ETA until MIN_FINISHES more records came in
# over at least one job's own duration (parallel workers finish their first jobs together).
SAME_MOMENT = 1.0  # seconds
MIN_FINISHES = 3


def eta_seconds(
    finish_times: list[float], done: int, total: int | None, job_seconds: float = 0.0
) -> float | None:
    """Seconds until the sweep's `total` records are written, at the rate the records of this
    run (`finish_times`, their mtimes) came in; None while that rate would mean little."""
    if not total or done >= total or not finish_times:
        return None
    times = sorted(finish_times)
    start = max(t for t in times if t <= times[0] + SAME_MOMENT)  # end of the first finish
    later = sum(1 for t in times if t > start)
    span = times[-1] - start
    if later < MIN_FINISHES or span <= 0 or span < job_seconds:
        return None
    return (total - done) * span / later


def progress_line(sweep_dir: Path, overrides: list[str], metrics: dict[str, Any]) -> str:
    """`[done/total] <overrides> val_loss=... <seconds>s, ETA ...`, from the files on disk, so it
    counts right whichever process (or machine) ran the other jobs (see eta_seconds)."""
    try:
        state = json.loads((sweep_dir / STATE_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        state = {"total": None, "swept": None, "started": time.time()}
    finished = [p.stat().st_mtime for p in sweep_files(sweep_dir)]
    done = len(finished)
    total = state["total"]
    swept = state["swept"]
    settings = " ".join(
        f"{key.rsplit('.', 1)[-1]}={value}"  # model.depth=3 -> depth=3
        for key, _, value in (o.partition("=") for o in overrides)
        if swept is None or key in swept
    )
    if metrics.get("status") == "failed":
        result = f"FAILED: {metrics.get('error')}"
    else:
        result = f"val_loss={metrics['val_loss']:.4g}"
        if metrics["status"] != "ok":
            result += f" ({metrics['status']})"
        result += f" {metrics['seconds']:.1f}s"
    line = f"[{done}/{total or '?'}] {settings} {result}"
    this_run = [t for t in finished if t >= state["started"]]  # not a resumed run's earlier jobs
    eta = eta_seconds(this_run, done, total, metrics.get("seconds") or 0.0)
    if eta is not None:
        line += f", ETA {_duration(eta)}"
    return line
