"""The one line a job prints when it ends: `[37/252] ... ETA 3m10s`, counted from the files
on disk, so it is right whichever process or machine ran the other jobs.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.run.files import sweep_files

STATE_FILE = ".sweep.json"  # in the sweep folder: planned job count and start time
# In the sweep folder: an empty file per job record, named by the time it was written (ms)
# and its job folder, so that a job counts the sweep's records by listing one folder (a walk
# through every job's folders cost a 10,000-job sweep seconds a job). Made by the sweep's
# main process before the first job (index_records); without it, the records are walked.
RECORDS_DIR = ".records"


def _job_key(sweep_dir: Path, job_dir: Path) -> str:
    relative = os.path.relpath(os.path.abspath(job_dir), os.path.abspath(sweep_dir))
    return hashlib.sha1(relative.encode()).hexdigest()[:16]


def _touch(index: Path, when: float, key: str) -> None:
    (index / f"{int(when * 1000):013d}-{key}").touch()


def index_records(sweep_dir: Path) -> None:
    """The sweep's record index, with an entry for each record already there (a resumed
    sweep's, at its own time); kept as it is if it exists."""
    index = Path(sweep_dir) / RECORDS_DIR
    if index.is_dir():
        return
    building = index.with_name(f"{RECORDS_DIR}.tmp")
    building.mkdir(parents=True, exist_ok=True)
    for record in sweep_files(sweep_dir):
        _touch(building, record.stat().st_mtime, _job_key(sweep_dir, record.parent))
    os.replace(building, index)


def note_record(sweep_dir: Path, job_dir: Path) -> None:
    """The job's record is written: its entry in the index, if the sweep has one."""
    index = Path(sweep_dir) / RECORDS_DIR
    if index.is_dir():
        _touch(index, time.time(), _job_key(sweep_dir, job_dir))


def forget_record(sweep_dir: Path, job_dir: Path) -> None:
    """The job's record is removed (to be written again): its entries go from the index."""
    index = Path(sweep_dir) / RECORDS_DIR
    if index.is_dir():
        key = _job_key(sweep_dir, job_dir)
        for name in os.listdir(index):
            if name.endswith(key):
                (index / name).unlink(missing_ok=True)


def finish_times(sweep_dir: Path) -> Sequence[float]:
    """When each record of the sweep was written, in order: from its index (each name read as
    a time only where it is looked at: a job of a 10,000-job sweep looks at a few), else from
    the records."""
    try:
        names = sorted(os.listdir(Path(sweep_dir) / RECORDS_DIR))
    except OSError:
        return sorted(p.stat().st_mtime for p in sweep_files(sweep_dir))
    return _IndexTimes(names)


class _IndexTimes(Sequence[float]):
    """The times of the record index's names (sorted: they begin with the time, zero-padded)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return _IndexTimes(self.names[i])
        return int(self.names[i][:13]) / 1000


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
    finish_times: Sequence[float], done: int, total: int | None, job_seconds: float = 0.0
) -> float | None:
    """Seconds until the sweep's `total` records are written, at the rate the records of this
    run (`finish_times`, in order) came in; None while that rate would mean little."""
    if not total or done >= total or not finish_times:
        return None
    times = finish_times
    start = times[bisect.bisect_right(times, times[0] + SAME_MOMENT) - 1]  # the first finish's end
    later = len(times) - bisect.bisect_right(times, start)
    span = times[-1] - start
    if later < MIN_FINISHES or span <= 0 or span < job_seconds:
        return None
    return (total - done) * span / later


def sweep_state(sweep_dir: Path) -> dict[str, Any]:
    """The sweep's plan as its sweeper wrote it before the first job (src.sweep.preflight's
    write_state), with its start time and pid and the sweep's id; {} if there is none."""
    path = Path(sweep_dir) / STATE_FILE
    try:
        stat = path.stat()
    except OSError:
        return {}
    return _read_state(str(path.absolute()), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_state(path: str, mtime_ns: int, size: int) -> dict[str, Any]:
    """Read once per process while the file is unchanged: a grid's plan lists every job."""
    try:
        state = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return state if isinstance(state, dict) else {}


def progress_lines(sweep_dir: Path, runs: list[tuple[list[str], dict[str, Any]]]) -> list[str]:
    """For each (overrides, metrics) of a job's runs (a stack's seeds), the line
    `[done/total] <overrides> val_loss=... <seconds>s, ETA ...`, counted from the files on disk,
    so that it is right whichever process (or machine) ran the other jobs (see eta_seconds).
    The sweep folder is read once for all of them."""
    state = {"total": None, "swept": None, "started": time.time(), **sweep_state(sweep_dir)}
    finished = finish_times(sweep_dir)
    this_run = finished[bisect.bisect_left(finished, state["started"]) :]  # not a resumed run's
    return [_line(state, len(finished), this_run, o, metrics) for o, metrics in runs]


def progress_line(sweep_dir: Path, overrides: list[str], metrics: dict[str, Any]) -> str:
    """The progress line of one run (see progress_lines)."""
    return progress_lines(sweep_dir, [(overrides, metrics)])[0]


def override_key(override: str) -> str:
    """An override's key: `++seeds=[0,1]` -> seeds."""
    return override.split("=", 1)[0].lstrip("+~")


def _short(value: str) -> str:
    """A search's long float (lr=0.08459126528049378) to 4 significant digits."""
    try:
        number = float(value)
    except ValueError:
        return value
    return f"{number:.4g}" if len(value) > 8 and "." in value else value


def settings(overrides: list[str], swept: list[str] | None) -> list[str]:
    """The overrides of the swept keys (all of them if those are not known), short:
    model.depth=3 -> depth=3, model.lr=0.08459126528049378 -> lr=0.08459."""
    return [
        f"{key.rsplit('.', 1)[-1]}={_short(value)}"
        for key, _, value in (o.partition("=") for o in overrides)
        if swept is None or key in swept
    ]


def _line(state, done: int, this_run, overrides: list[str], metrics: dict[str, Any]) -> str:
    total = state["total"]
    if metrics.get("status") == "failed":
        result = f"FAILED: {metrics.get('error')}"
    else:
        result = f"val_loss={metrics['val_loss']:.4g}"
        if metrics["status"] != "ok":
            result += f" ({metrics['status']})"
        result += f" {metrics['seconds']:.1f}s"
    line = f"[{done}/{total or '?'}] {' '.join(settings(overrides, state['swept']))} {result}"
    eta = eta_seconds(this_run, done, total, metrics.get("seconds") or 0.0)
    if eta is not None:
        line += f", ETA {_duration(eta)}"
    return line
