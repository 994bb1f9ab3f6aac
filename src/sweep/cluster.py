"""A sweep on a batch cluster (SLURM, PBS, SGE, LSF) through Dask-jobqueue.

The main process hosts a Dask scheduler; each worker is a batch job running many Hydra jobs, so
Python, torch and Lightning start once. Dask owns the queue, heartbeats and retries; workers
join over TLS with the sweep's own certificate, so a worker of a killed sweep never joins another.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import resource
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from src.sweep.worker import Context, run_job

log = logging.getLogger(__name__)

CHECK_S = 30.0  # how often the batch system is asked about the sweep's worker jobs
JOBS_FILE = "jobs"  # every batch job id the folder's sweeps submitted, one a line
TICK_S = 1.0  # how often the main process looks at its futures when none ends


def cluster_class(scheduler: str) -> Any:
    """dask-jobqueue's cluster of a batch system: SLURMCluster, PBSCluster, SGECluster, ..."""
    import dask_jobqueue

    return getattr(dask_jobqueue, f"{scheduler.upper()}Cluster")


def worker_lifetime_s(timeout_min: float) -> float:
    """A worker's wall time less a tenth (20 s to 5 min): it retires before it is killed mid-job."""
    wall = timeout_min * 60
    return wall - min(max(wall / 10, 20), 300)


def cluster_options(launcher: dict[str, Any]) -> dict[str, Any]:
    """dask-jobqueue's keyword arguments for the launcher's settings."""
    folder = Path(launcher["folder"])
    directives = list(launcher["job_extra_directives"])
    scheduler = launcher["scheduler"]
    if launcher["gpus_per_node"] and scheduler == "slurm":
        directives.append(f"--gres=gpu:{launcher['gpus_per_node']}")
    options = {
        "cores": launcher["cpus_per_task"],
        "processes": 1,
        "memory": f"{launcher['mem_gb']}GB",
        "walltime": f"{launcher['timeout_min'] // 60:02d}:{launcher['timeout_min'] % 60:02d}:00",
        "queue": launcher["partition"],
        "account": launcher["account"],
        "job_name": "sweep-worker",
        "job_extra_directives": directives,
        "job_script_prologue": list(launcher["job_script_prologue"]),
        "python": launcher["python"] or sys.executable,
        "interface": launcher["interface"],
        "death_timeout": launcher["death_timeout_s"],
        "log_directory": str(folder / "logs"),
        "local_directory": str(folder / "scratch"),
        "security": True,  # a certificate of this sweep's own: no other sweep's worker joins
        "shared_temp_directory": str(folder),
        "scheduler_options": {"port": launcher["port"], "dashboard_address": _dashboard(launcher)},
    }
    if scheduler in ("sge", "lsf"):  # their word for the account charged
        options["project"] = options.pop("account")
    return {k: v for k, v in options.items() if v is not None}


def _dashboard(launcher: dict[str, Any]) -> str | None:
    """The dashboard's address where bokeh is installed (Dask serves none without it)."""
    return launcher["dashboard"] if importlib.util.find_spec("bokeh") else None


class ClusterSweep:
    """The main process's side: the Dask cluster, the jobs in flight, and the worker jobs."""

    def __init__(self, launcher: dict[str, Any], context: Context, job_ended, job_lost) -> None:
        import dask

        self.launcher, self.job_ended, self.job_lost = launcher, job_ended, job_lost
        self.folder = Path(launcher["folder"])
        self.scheduler = launcher["scheduler"]
        self.job_cls = cluster_class(self.scheduler).job_cls
        self.folder.mkdir(parents=True, exist_ok=True)
        cancel_orphans(self.folder, self.scheduler, self.job_cls.cancel_command)
        # Retries of a task whose worker died (not one that retired in time); a worker per job
        # waiting (a job's length is unknown until one ends); a retired worker's batch job ends
        # by itself before Dask would cancel it.
        self.config = dask.config.set(
            {
                "distributed.scheduler.allowed-failures": launcher["retries"],
                "distributed.scheduler.unknown-task-duration": "1h",
                "distributed.scheduler.worker-saturation": 1.0,
                "distributed.deploy.lost-worker-timeout": "5s",
            }
        )
        for name in ("distributed", "dask_jobqueue"):  # the scheduler's own chatter
            logging.getLogger(name).setLevel(logging.ERROR)
        self.token = uuid.uuid4().hex[:8]
        self.context_file = context.save(self.folder / f"context-{self.token}.pkl")
        self.futures: dict[int, Any] = {}  # jobs in flight: number -> future
        self.overrides: dict[int, list[str]] = {}
        self.batch_jobs: dict[str, str] = {}  # every worker batch job id -> its worker's name
        self.current: dict[str, str] = {}  # worker name -> its latest batch job (names recur)
        self.reached: set[str] = set()  # batch jobs whose worker reached the scheduler
        self.arrived: dict[str, float] = {}  # worker address -> when it reached the scheduler
        self.retired: set[str] = set()
        self.lifetime = worker_lifetime_s(launcher["timeout_min"])
        self.counted: set[str] = set()  # batch jobs seen ended
        self.barren = 0  # worker jobs that ended before reaching the scheduler, in a row
        self.checked = self.began = time.monotonic()
        self.first_result_s: float | None = None
        self.peak_mb = 0.0  # the largest resident memory a worker reached
        self.client = None
        self.refusals = SubmissionErrors()
        try:
            self.cluster = cluster_class(self.scheduler)(**cluster_options(launcher))
        except (OSError, ValueError, RuntimeError) as error:  # named by the key it came from
            reason = " ".join(str(error).split())[-300:]
            key = "interface" if "interface" in reason.lower() else "port"
            sys.stderr.write(f"error: hydra.launcher.{key}: the scheduler cannot start: {reason}\n")
            sys.exit(2)
        refused = check_submission(self.scheduler, self.cluster.job_script(), self.folder)
        if refused:
            self._end(refused)
        self.cluster.adapt(minimum_jobs=0, maximum_jobs=launcher["workers"], wait_count=3)
        from distributed import Client

        self.client = Client(self.cluster)
        link = self.cluster.dashboard_link if launcher.get("dashboard") else None
        if link and _dashboard(launcher):
            log.info(f"Dask dashboard (the sweep's task stream): {link}")

    def start(self, jobs: list[list[str]], first: int) -> None:
        for number, overrides in enumerate(jobs, first):
            self.overrides[number] = list(overrides)
            key = f"job-{number}-{self.token}"
            # plain=True: as tested on SLURM, the scheduler holds plain results
            self.futures[number] = self.client.submit(
                run_job, self.context_file, number, list(overrides), plain=True, key=key
            )

    def wait(self, config_loader, config, every: bool) -> dict[int, Any]:
        """The jobs that ended (every=True: all), by number; a lost one's result from `job_lost`."""
        from distributed import wait

        results: dict[int, Any] = {}
        while self.futures and (every or not results):
            with contextlib.suppress(TimeoutError):
                wait(list(self.futures.values()), timeout=TICK_S, return_when="FIRST_COMPLETED")
            self._watch_workers()
            for number, future in list(self.futures.items()):
                if future.status == "finished":
                    results[number] = future.result()
                    self.first_result_s = self.first_result_s or time.monotonic() - self.began
                    self.job_ended(results[number])
                elif future.status in ("error", "cancelled"):
                    error = self._why_lost(future)
                    results[number] = self._lost(config_loader, config, number, error)
                else:
                    continue
                self.futures.pop(number).release()  # no worker holds a result it must hand on
            self._check_submissions()
            if time.monotonic() - self.checked > CHECK_S:
                for number, error in self._check_batch_jobs().items():
                    self.futures.pop(number).cancel()
                    results[number] = self._lost(config_loader, config, number, error)
        return results

    def _lost(self, config_loader, config, number: int, error: str) -> Any:
        return self.job_lost(config_loader, config, self.overrides.pop(number), number, error)

    def _watch_workers(self) -> None:
        """Note each worker's batch job and arrival; retire those near their wall time."""
        for name, job in list(self.cluster.workers.items()):
            job_id = getattr(job, "job_id", None)
            if job_id and job_id not in self.batch_jobs:
                self.batch_jobs[job_id], self.current[str(name)] = str(name), job_id
                with (self.folder / JOBS_FILE).open("a") as jobs:
                    jobs.write(f"{job_id}\n")
        workers = self.cluster.scheduler_info.get("workers", {})
        self.reached |= {self.current.get(str(w.get("name")), "") for w in workers.values()}
        now = time.monotonic()
        old = {a for a in workers if now - self.arrived.setdefault(a, now) > self.lifetime}
        if old - self.retired:  # its job in flight runs again elsewhere, not as a failure
            self._measure_peaks()
            done = self.client.retire_workers(workers=list(old - self.retired), close_workers=True)
            self.retired |= set(done)
            if done:
                log.info(f"{len(done)} worker(s) retired before their wall time; others take over")

    def _check_submissions(self) -> None:
        """A refusal before any job was accepted is a wrong setting: exit 2; later, it passes."""
        error = self.refusals.pop()
        if error is None:
            return
        if not self.batch_jobs:
            self._end(refusal(self.scheduler, error))
        log.warning(f"a worker job was refused ({error}); trying again")

    def _why_lost(self, future: Any) -> str:
        """Why Dask gave up on a job: its last worker's batch job state (asked once) and log."""
        from distributed import KilledWorker

        error = future.exception()
        if not isinstance(error, KilledWorker):
            return f"{type(error).__name__}: {error}"
        job_id = self.current.get(str(getattr(error.last_worker, "name", "")), "?")
        state = end_states(self.scheduler, [job_id]).get(job_id, "ended")
        logs = self.folder / "logs"
        log_file = logs / f"sweep-worker-{job_id}.err" if self.scheduler == "slurm" else logs
        return f"{self.scheduler.upper()}: {state} (worker batch job {job_id}, its log {log_file})"

    def _check_batch_jobs(self) -> dict[int, str]:
        """Replace worker jobs that ended before reaching the scheduler; exit 2 if none ever did,
        and fail the jobs waiting (naming the logs) once too many in a row did."""
        self.checked = time.monotonic()
        try:
            live = queued_or_running(self.scheduler, list(self.batch_jobs))
        except (OSError, subprocess.TimeoutExpired) as error:  # a busy controller: next time
            log.warning(f"the batch system did not answer ({error}); asking again later")
            return {}
        if live is None:
            return {}
        for job_id, name in self.batch_jobs.items():
            if job_id in live or job_id in self.counted:
                continue
            self.counted.add(job_id)
            self.barren = 0 if job_id in self.reached else self.barren + 1
            if job_id not in self.reached and self.current.get(name) == job_id:
                self.cluster.sync(self.cluster.scale_down, [name])  # Dask submits another
        if not self.barren:
            return {}
        logs = self.folder / "logs"
        if not self.reached - {""}:
            self._unreachable(logs)
        if self.barren < 2 * self.launcher["workers"]:
            return {}
        error = (
            f"{self.scheduler.upper()}: {self.barren} worker batch jobs in a row ended "
            f"before reaching the scheduler; see their logs in {logs}"
        )
        return dict.fromkeys(self.futures, error)

    def _unreachable(self, logs: Path) -> None:
        """No worker ever reached the scheduler, and one ended: one line, exit 2."""
        text = " ".join(_tail(p) for p in logs.glob("*.err"))
        if any(m in text for m in ("Waiting to connect", "Timed out", "interface")):
            reason = (
                f"hydra.launcher.interface: the workers could not reach the scheduler at "
                f"{self.cluster.scheduler_address}; set hydra.launcher.interface to a network "
                "interface the compute nodes share with this machine (e.g. ib0), and "
                "hydra.launcher.port to a port they may reach"
            )
        else:
            reason = f"hydra.launcher: the worker batch jobs end before they start; see {logs}"
        self._end(reason)

    def _end(self, reason: str) -> None:
        """The sweep cannot go on: its one line, the cluster closed, exit 2."""
        sys.stderr.write(f"error: {reason}\n")
        self.close()
        os._exit(2)

    def _measure_peaks(self) -> None:
        with contextlib.suppress(Exception):  # a worker that is leaving does not answer
            self.peak_mb = max(self.peak_mb, *self.client.run(_peak_mb).values())

    def close(self, measure: bool = True) -> None:
        """Cancel the worker jobs and stop the scheduler; their usage goes to usage.json."""
        if measure and self.batch_jobs and self.client and self.client.status != "closed":
            self._measure_peaks()
            jobs, peak = len(self.batch_jobs), round(self.peak_mb)
            usage = dict(worker_jobs=jobs, worker_peak_mb=peak, first_result_s=self.first_result_s)
            with contextlib.suppress(OSError):
                (self.folder / "usage.json").write_text(json.dumps(usage))
            limit = self.launcher["mem_gb"]
            log.info(f"{jobs} worker batch job(s); a worker's peak memory {peak} MB of {limit} GB")
        logging.getLogger("distributed").setLevel(logging.CRITICAL)  # its closing chatter
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.cluster.close(timeout=20)
        with contextlib.suppress(Exception):
            self.config.__exit__(None, None, None)
        self.context_file.unlink(missing_ok=True)
        self.refusals.close()

    def cancel(self) -> None:
        """A signal stops the sweep: cancel every worker job at once, then close."""
        cancel_jobs(self.job_cls.cancel_command, list(self.batch_jobs))
        self.close(measure=False)


class SubmissionErrors(logging.Filter):
    """Refused submissions, which Dask logs as tracebacks and retries: kept, never printed."""

    LOGGERS = ("distributed.deploy.adaptive", "distributed.deploy.spec", "tornado.application")

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        text = f"{record.getMessage()} {error or ''}"
        if "Command exited with non-zero exit code" not in text:
            return True
        lines = [line for line in text.split("stderr:")[-1].splitlines() if line.strip()]
        self.errors.append(" ".join(lines)[-300:])
        return False

    def pop(self) -> str | None:
        return self.errors.pop() if self.errors else None

    def close(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeFilter(self)


def check_submission(scheduler: str, script: str, folder: Path) -> str | None:
    """Why SLURM would refuse a worker's job script (`sbatch --test-only`), or None."""
    if scheduler != "slurm":
        return None
    path = folder / "worker.sh"
    path.write_text(script)
    done = _command("sbatch", "--test-only", str(path))
    if done.returncode == 0:
        return None
    reason = " ".join(line for line in done.stderr.splitlines() if "error" in line)
    return refusal(scheduler, reason[-300:] or done.stderr[-300:])


def refusal(scheduler: str, reason: str) -> str:
    return f"hydra.launcher: {scheduler.upper()} refused its worker jobs: {reason}"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tail(path: Path, size: int = 20000) -> str:
    with contextlib.suppress(OSError), path.open("rb") as file:
        file.seek(max(path.stat().st_size - size, 0))
        return file.read().decode(errors="replace")
    return ""


# The batch system's commands, asked only where a worker's fate needs it.


def _command(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def queued_or_running(scheduler: str, job_ids: list[str]) -> set[str] | None:
    """Those of the jobs SLURM still lists; None for another batch system (not asked)."""
    if scheduler != "slurm":
        return None
    listed = _command("squeue", "--me", "-h", "-o", "%i")
    if listed.returncode != 0:
        raise OSError(f"squeue failed: {listed.stderr.strip()}")
    return set(listed.stdout.split()) & set(job_ids)


def end_states(scheduler: str, job_ids: list[str]) -> dict[str, str]:
    """How SLURM's accounting says the jobs ended (`CANCELLED by 0`, `OUT_OF_MEMORY`, ...)."""
    if scheduler != "slurm":
        return {}
    done = _command("sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", "JobID,State")
    if done.returncode != 0:
        return {}
    return dict(line.split("|", 1) for line in done.stdout.splitlines() if "|" in line)


def cancel_jobs(cancel_command: str, job_ids: list[str]) -> None:
    if job_ids:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            _command(*shlex.split(cancel_command), *job_ids)


def cancel_orphans(folder: Path, scheduler: str, cancel_command: str) -> None:
    """Cancel the worker jobs a killed sweep of the folder left, and wait until none is listed,
    so no configuration is trained twice at once."""
    path = folder / JOBS_FILE
    job_ids = path.read_text().split() if path.exists() else []
    if not job_ids:
        return
    try:
        live = queued_or_running(scheduler, job_ids)
    except (OSError, subprocess.TimeoutExpired):
        live = None  # cancel them all: a job that ended already is refused, nothing more
    cancel_jobs(cancel_command, job_ids if live is None else sorted(live))
    deadline = time.monotonic() + 60
    with contextlib.suppress(OSError, subprocess.TimeoutExpired):
        while queued_or_running(scheduler, job_ids) and time.monotonic() < deadline:
            time.sleep(1)
    path.unlink()
    if live is None or live:
        log.info("cancelled the worker jobs an earlier sweep of this folder left")
