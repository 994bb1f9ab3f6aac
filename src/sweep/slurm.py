"""A sweep on a SLURM cluster: a pool of long-lived worker tasks that take the sweep's jobs one
by one from a queue in the sweep folder, so a task pays the start-up (Python, torch, Lightning,
wandb: seconds) once for many jobs of a few seconds each.

The local paths (joblib, basic) run jobs in this machine's processes; this one runs the same
`run_job` in SLURM tasks submitted with submitit. Everything SLURM-specific lives here:

- `WorkQueue`: `<sweep>/.slurm/` holds `queue/<n>.json` (a job not yet taken),
  `running/<n>@<task>.json` (taken by that task: an atomic rename, so no job runs twice at
  once) and `done/<n>.pkl` (its JobReturn). Jobs are numbered as Hydra numbers them.
- `Worker`: the function each task runs. A requeued task (a time limit or a preemption:
  submitit's `checkpoint`, the one owner of the requeue) first runs again the job it had taken,
  which skips the seeds that finished. SIGTERM (scancel) ends it at once.
- `Pool`: the main process's side. It keeps `workers` tasks alive while jobs wait, prints each
  job's progress line, and turns a task SLURM ended (cancelled, timed out, out of memory, node
  lost) into its job run once more on another worker, then recorded as failed with SLURM's
  state. It never raises for what SLURM did: the sweep ends with its report and its count.
- `check_no_live_tasks`: a folder whose earlier tasks still run (its main process was killed)
  is refused, so no configuration is trained twice at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from src.config import ConfigError

log = logging.getLogger(__name__)

SLURM_DIR = ".slurm"
TASKS_FILE = "tasks"  # every SLURM job id the folder's sweeps submitted, one a line
CLOSED_FILE = "closed"  # the sweep needs no more jobs: idle workers end
HEARTBEAT_FILE = "heartbeat"  # touched by the main process while it waits for jobs
POLL_S = 0.25  # how often a waiting process looks at the queue
STATE_POLL_S = 3.0  # how often the main process asks SLURM about its tasks
ORPHAN_S = 60.0  # an idle worker whose main process was silent this long ends


class TaskTimeLimit(Exception):
    """A worker's task reached its time limit and submitit requeues it no more."""


# The queue: plain files in the sweep folder, which every node of a cluster sees.


class WorkQueue:
    def __init__(self, sweep_dir: Path) -> None:
        self.root = Path(sweep_dir) / SLURM_DIR
        self.queued, self.running, self.done = (self.root / d for d in ("queue", "running", "done"))

    def reset(self) -> None:
        """A new sweep process: what an earlier one left queued, running or done is stale."""
        for folder in (self.queued, self.running, self.done):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        (self.root / CLOSED_FILE).unlink(missing_ok=True)
        self.beat()

    def put(self, number: int, overrides: list[str], tries: int = 0) -> None:
        _write_atomic(self.queued / f"{number}.json", json.dumps([overrides, tries]).encode())

    def take(self, task: str) -> tuple[int, list[str], Path] | None:
        """The next job for `task`: one it had taken before a requeue, else the lowest-numbered
        queued one. Two tasks never get the same job: whoever renames it first has it."""
        mine = sorted(self.running.glob(f"*@{task}.json"))
        if mine:
            return _claim(mine[0])
        for path in sorted(self.queued.glob("*.json"), key=lambda p: int(p.stem)):
            claimed = self.running / f"{path.stem}@{task}.json"
            try:
                os.rename(path, claimed)
            except FileNotFoundError:  # another task was first
                continue
            return _claim(claimed)
        return None

    def finish(self, number: int, claim: Path, result: Any) -> None:
        _write_atomic(self.done / f"{number}.pkl", pickle.dumps(result))
        claim.unlink(missing_ok=True)

    def claims(self) -> dict[int, tuple[str, Path]]:
        """The jobs taken and not done: job number -> (task, claim file)."""
        taken = {}
        for path in self.running.glob("*@*.json"):
            number, task = path.stem.split("@", 1)
            taken[int(number)] = (task, path)
        return taken

    def release(self, claim: Path, retries: int) -> bool:
        """A job whose task ended: back in the queue if it was tried at most `retries` times
        (True), else dropped (False)."""
        number, overrides, _ = _claim(claim)
        tries = json.loads(claim.read_text())[1] + 1
        if tries <= retries:
            self.put(number, overrides, tries)
        claim.unlink(missing_ok=True)
        return tries <= retries

    def is_empty(self) -> bool:
        return not any(self.queued.glob("*.json"))

    def beat(self) -> None:
        (self.root / HEARTBEAT_FILE).touch()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            (self.root / CLOSED_FILE).touch()

    def abandoned(self) -> bool:
        """Whether an idle worker should end: the sweep said so, or its main process is gone."""
        if (self.root / CLOSED_FILE).exists():
            return True
        try:
            return time.time() - (self.root / HEARTBEAT_FILE).stat().st_mtime > ORPHAN_S
        except FileNotFoundError:
            return True


def _claim(path: Path) -> tuple[int, list[str], Path]:
    overrides, _ = json.loads(path.read_text())
    return int(path.stem.split("@", 1)[0]), overrides, path


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# The worker: what each SLURM task runs.


class Worker:
    """Runs the sweep's jobs from the queue until none is left and the sweep needs no more.
    Pickled by submitit with Hydra's context, so each job runs as a launcher's job would."""

    def __init__(self, sweep_dir, hydra_context, config, task_function, singleton_state) -> None:
        self.sweep_dir = Path(sweep_dir)
        self.hydra_context, self.config = hydra_context, config
        self.task_function, self.singleton_state = task_function, singleton_state
        self.ending = False

    def __call__(self, index: int) -> None:
        import submitit

        task = submitit.JobEnvironment().job_id  # <array id>_<index>, the same after a requeue
        signal.signal(signal.SIGTERM, _end_now)  # scancel: submitit would let the job run on
        self._watch_time_limit()
        queue, jobs = WorkQueue(self.sweep_dir), 0
        while not self.ending:
            job = queue.take(task)
            if job is None:
                if queue.abandoned():
                    break
                time.sleep(POLL_S)
                continue
            number, overrides, claim = job
            queue.finish(number, claim, _plain(self.run(number, overrides, task)))
            jobs += 1
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        log.info(f"worker {task}: {jobs} job(s), peak memory {peak_mb:.0f} MB")

    def checkpoint(self, index: int) -> Any:
        """submitit's hook before it requeues the task: the same worker, on the same queue."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, index)

    def _watch_time_limit(self) -> None:
        """When SLURM warns of the time limit, submitit requeues the task (checkpoint), or,
        requeued too often, raises inside the job: that job fails naming the limit, and this
        worker takes no other job."""
        requeue = signal.getsignal(signal.SIGUSR2)
        if not callable(requeue):
            return
        minutes = self.config.hydra.launcher.timeout_min
        retries = self.config.hydra.launcher.max_num_timeout

        def on_time_limit(signum, frame) -> None:
            self.ending = True
            try:
                requeue(signum, frame)
            except Exception:  # submitit's "timed-out too many times"
                raise TaskTimeLimit(
                    f"SLURM: TIMEOUT after {minutes} min, the worker task's limit "
                    f"(hydra.launcher.timeout_min), requeued {retries} time(s)"
                ) from None

        signal.signal(signal.SIGUSR2, on_time_limit)

    def run(self, number: int, overrides: list[str], task: str) -> Any:
        from hydra.core.singleton import Singleton
        from hydra.core.utils import run_job, setup_globals
        from omegaconf import open_dict

        Singleton.set_state(self.singleton_state)
        setup_globals()
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.id = task
            config.hydra.job.num = number
        return run_job(
            hydra_context=self.hydra_context,
            task_function=self.task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )


def _plain(result: Any) -> Any:
    """A JobReturn that unpickles anywhere: its configs as plain ones, without the plugins'
    structured config classes."""
    from omegaconf import OmegaConf

    for name in ("cfg", "hydra_cfg"):
        setattr(result, name, OmegaConf.create(OmegaConf.to_container(getattr(result, name))))
    return result


def _end_now(signum, frame) -> None:
    os._exit(128 + signum)  # the job in flight is run again or recorded by the main process


# SLURM's commands, in one place.


def _slurm(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def queued_or_running(job_ids: list[str]) -> dict[str, str]:
    """Of these SLURM job ids (array ids or array tasks), the tasks SLURM still lists: task id
    -> state (PENDING, RUNNING, COMPLETING, ...)."""
    if not job_ids:
        return {}
    listed = _slurm("squeue", "--me", "-h", "-r", "-o", "%i %T")
    if listed.returncode != 0:
        raise OSError(f"squeue failed: {listed.stderr.strip()}")
    wanted = set(job_ids)
    states = {}
    for line in listed.stdout.splitlines():
        task, state = line.split()
        if task in wanted or task.split("_", 1)[0] in wanted:
            states[task] = state
    return states


def end_states(tasks: list[str]) -> dict[str, str]:
    """How SLURM ended these tasks, from its accounting: task id -> `CANCELLED by 0`,
    `TIMEOUT after 30 min`, `OUT_OF_MEMORY`, ...; {} where sacct cannot say."""
    done = _slurm("sacct", "-n", "-P", "-X", "-j", ",".join(tasks), "-o", "JobID,State,Timelimit")
    if done.returncode != 0:
        return {}
    states = {}
    for line in done.stdout.splitlines():
        task, state, limit = (line.split("|") + ["", ""])[:3]
        if state.startswith("TIMEOUT"):
            state += f" after {_minutes(limit)}"
        states[task] = state
    return states


def _minutes(limit: str) -> str:
    """sacct's [D-]HH:MM:SS as `30 min`."""
    days, _, clock = limit.rpartition("-")
    parts = [int(p) for p in clock.split(":") if p.isdigit()]
    while len(parts) < 3:
        parts.insert(0, 0)
    return f"{(int(days or 0) * 24 + parts[0]) * 60 + parts[1]} min"


def cancel(job_ids: list[str]) -> None:
    if job_ids:
        _slurm("scancel", *job_ids)


def folder_tasks(sweep_dir: Path) -> list[str]:
    path = Path(sweep_dir) / SLURM_DIR / TASKS_FILE
    return path.read_text().split() if path.exists() else []


def check_no_live_tasks(sweep_dir: Path) -> None:
    """Refuse a sweep into a folder whose earlier SLURM tasks are still queued or running (its
    main process was killed): they would train the same configurations beside this one."""
    ids = folder_tasks(sweep_dir)
    if not ids or shutil.which("squeue") is None:
        return
    try:
        live = queued_or_running(ids)
    except (OSError, subprocess.TimeoutExpired):
        return
    if live:
        arrays = sorted({task.split("_", 1)[0] for task in live}, key=int)
        raise ConfigError(
            "hydra.sweep.dir",
            str(sweep_dir),
            f"a folder whose SLURM jobs are done (SLURM jobs {' '.join(arrays)} of this folder "
            f"are still queued or running: scancel {' '.join(arrays)}, or wait)",
        )


# The pool: the main process's side of a sweep on SLURM.


class Pool:
    """Keeps up to `workers` worker tasks while jobs wait, and collects the jobs' returns."""

    def __init__(self, sweep_dir: Path, launcher: dict[str, Any], worker: Worker) -> None:
        self.sweep_dir, self.worker = Path(sweep_dir), worker
        self.executor, self.executor_folder = executor_for(launcher), launcher["submitit_folder"]
        self.workers, self.retries = launcher["workers"], launcher["retries"]
        self.queue = WorkQueue(sweep_dir)
        self.queue.reset()
        self.pending: dict[int, list[str]] = {}  # jobs queued or running: number -> overrides
        self.live: set[str] = set()  # tasks submitted and not seen ended
        self.barren = 0  # tasks that ended abnormally without taking a job, in a row
        self.checked = 0.0

    def submit(self, count: int) -> None:
        try:
            with _quiet_stderr():  # sbatch's own lines: its error says them again
                jobs = self.executor.map_array(self.worker, list(range(count)))
        except Exception as error:  # sbatch said no: a partition, account or limit it refuses
            reason = " ".join(str(error).split())[-300:]
            print(f"error: hydra.launcher: SLURM refused its tasks: {reason}", file=sys.stderr)
            sys.exit(2)
        array = jobs[0].job_id.split("_", 1)[0]
        with (self.sweep_dir / SLURM_DIR / TASKS_FILE).open("a") as tasks:
            tasks.write(array + "\n")
        self.live |= {f"{array}_{i}" for i in range(count)}
        self.checked = time.monotonic()
        log.info(f"SLURM job {array}: {count} worker task(s)")

    def start(self, jobs: list[list[str]], first: int) -> None:
        """Queue the jobs, numbered from `first`; the workers take them from there."""
        for number, overrides in enumerate(jobs, first):
            self.queue.put(number, list(overrides))
            self.pending[number] = list(overrides)
        self.checked = 0.0  # workers for them now, not at the next look

    def wait(self, config_loader, config, every: bool = True) -> dict[int, Any]:
        """Wait until every pending job (or, every=False, at least one) has ended, printing
        each one's line; returns their JobReturns, a job SLURM kept from finishing recorded as
        failed."""
        results: dict[int, Any] = {}
        while self.pending and (every or not results):
            self.queue.beat()
            for number in list(self.pending):
                if (self.queue.done / f"{number}.pkl").exists():
                    results[number] = self._collected(number)
                    del self.pending[number]
            if time.monotonic() - self.checked > STATE_POLL_S:
                for number, error in self._check_tasks().items():
                    overrides = self.pending.pop(number)
                    results[number] = lost_job(config_loader, config, overrides, number, error)
            if self.pending and (every or not results):
                time.sleep(POLL_S)
        return results

    def _collected(self, number: int) -> Any:
        from src.sweep.jobs import report_job

        result = pickle.loads((self.queue.done / f"{number}.pkl").read_bytes())
        report_job(result)
        return result

    def _check_tasks(self) -> dict[int, str]:
        """Ask SLURM which tasks ended; run their jobs again, or fail them once tried
        `retries` times (job number -> error); keep `workers` tasks while jobs wait."""
        self.checked = time.monotonic()
        try:
            live = queued_or_running(sorted(self.live))
        except (OSError, subprocess.TimeoutExpired) as error:  # a busy controller: next time
            log.warning(f"SLURM did not answer ({error}); asking again in {STATE_POLL_S:.0f} s")
            return {}
        ended = sorted(self.live - set(live))
        self.live = set(live)
        failed: dict[int, str] = {}
        if ended:
            states = end_states(ended)
            claims = self.queue.claims()
            for task in ended:
                state = states.get(task, "ended (no accounting to say how)")
                taken = [(n, path) for n, (t, path) in claims.items() if t == task]
                if not state.startswith("COMPLETED"):
                    self.barren = 0 if taken else self.barren + 1
                for number, claim in taken:
                    error = f"SLURM: {state} (task {task})"
                    if self.queue.release(claim, self.retries):
                        log.warning(f"job {number}: {error}; run again on another worker")
                    else:
                        failed[number] = error
        waiting = len(list(self.queue.queued.glob("*.json")))
        if waiting and self.barren >= 2 * self.workers:
            failed.update(self._give_up())
        elif waiting and len(self.live) < self.workers:
            self.submit(min(self.workers - len(self.live), waiting))
        return failed

    def _give_up(self) -> dict[int, str]:
        """Tasks keep ending before they take a job (a broken environment, a bad partition):
        the jobs still queued fail, naming where the tasks' logs are."""
        error = (
            f"SLURM: {self.barren} worker tasks in a row ended before taking a job; "
            f"see their logs in {Path(self.executor_folder).parent}"
        )
        failed = {}
        for path in list(self.queue.queued.glob("*.json")):
            failed[int(path.stem)] = error
            path.unlink(missing_ok=True)
        return failed

    def close(self) -> None:
        """No more jobs: idle workers end (and the sweep's records are not kept waiting)."""
        self.queue.close()

    def cancel(self) -> None:
        """Cancel every task of the pool and wait (briefly) until SLURM lists none."""
        self.queue.close()
        ids = folder_tasks(self.sweep_dir)
        cancel(ids)
        deadline = time.monotonic() + 20
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            while queued_or_running(ids) and time.monotonic() < deadline:
                time.sleep(0.5)


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null: what the subprocesses started meanwhile print there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def lost_job(config_loader, config, overrides: list[str], number: int, error: str) -> Any:
    """The JobReturn of a job SLURM kept from finishing: each of its seeds that has no finished
    record gets a failed one with SLURM's reason, laid out as if the job had written it."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.utils import JobReturn, JobStatus
    from omegaconf import OmegaConf, open_dict

    from src.sweep.jobs import record_failed, report_job

    job = config_loader.load_sweep_config(config, list(overrides))
    with open_dict(job.hydra.job):
        job.hydra.job.num = number
    output_dir = Path(job.hydra.sweep.dir) / str(OmegaConf.select(job, "hydra.sweep.subdir"))
    with open_dict(job.hydra.runtime):
        job.hydra.runtime.output_dir = str(output_dir.absolute())
    HydraConfig.instance().set_config(job)  # as a launcher does: `output_dir` reads it
    task_cfg = OmegaConf.masked_copy(job, [k for k in job if k != "hydra"])
    seeds = record_failed(task_cfg, list(overrides), Path(job.hydra.sweep.dir), error)
    value = [math.inf] * len(seeds) if job.get("seeds") is not None else math.inf
    result = JobReturn(
        overrides=list(overrides),
        cfg=task_cfg,
        hydra_cfg=OmegaConf.create({"hydra": job.hydra}),
        status=JobStatus.COMPLETED,
        _return_value=value,
    )
    report_job(result)  # its FAILED line, as a job that ends prints its own
    return result


def executor_for(launcher: dict[str, Any]) -> Any:
    """A submitit executor of the launcher's settings (hydra/launcher=slurm)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    own = {"_target_", "workers", "retries", "submitit_folder", "max_num_timeout"}
    folder = str(launcher["submitit_folder"])
    executor = submitit.AutoExecutor(
        folder=folder, cluster="slurm", slurm_max_num_timeout=launcher["max_num_timeout"]
    )
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(
        **{k if k in shared else f"slurm_{k}": v for k, v in launcher.items() if k not in own}
    )
    return executor
