"""A sweep's processes live and die together.

A signal or a full disk ends the main process in one line, after its workers are killed and
their jobs recorded as failed. A SIGKILL cannot be caught: each worker asks the kernel to kill it
with its parent (PR_SET_PDEATHSIG), so it writes nothing after the main process is gone.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from src.run.files import no_space

_SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP", signal.SIGINT: "Ctrl-C"}
_PR_SET_PDEATHSIG = 1
_guarded = False
_on_stop: list = []  # what else a stopped sweep must end first (its SLURM tasks)


def on_stop(cleanup) -> None:
    """Have a signal that stops the sweep call `cleanup()` before the workers are killed."""
    _on_stop.append(cleanup)


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (children first), read from /proc; [] where there is none."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(0), [])
        found += children
        todo += children
    return found


def kill_descendants(timeout: float = 10.0) -> None:
    """SIGKILL every process below this one and wait until they are gone."""
    pids = descendants(os.getpid())
    # All stopped first: one that saw another die (loky's resource tracker) would print why.
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):  # reap our own children
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.01)


def stop_sweep(sweep_dir: Path, mark_unfinished, line, status: int) -> NoReturn:
    """Kill the workers, record their jobs as failed, write `line(jobs recorded)`, exit."""
    # A process started meanwhile (loky restarts its resource tracker when its workers die)
    # must not add to the one line: stderr goes to /dev/null.
    sys.stdout.flush()
    sys.stderr.flush()
    stderr = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
    for cleanup in _on_stop:
        cleanup()
    kill_descendants()
    recorded = mark_unfinished(sweep_dir)
    os.write(stderr, (line(len(recorded)) + "\n").encode())
    os._exit(status)


def end_sweep_on_signals(sweep_dir: Path, mark_unfinished) -> None:
    """On SIGTERM, SIGHUP or Ctrl-C, stop the sweep (stop_sweep), exit 128 + the signal."""

    def stop(signum, frame) -> None:
        def line(n: int) -> str:
            return (
                f"stopped by {_SIGNALS[signum]}: {n} running job(s) recorded as failed in "
                f"{sweep_dir}; rerun the same command to resume"
            )

        stop_sweep(sweep_dir, functools.partial(mark_unfinished, quiet=True), line, 128 + signum)

    for signum in _SIGNALS:
        signal.signal(signum, stop)


@contextlib.contextmanager
def stop_on_full_disk(sweep_dir: Path, mark_unfinished) -> Iterator[None]:
    """Around the launches: a full disk stops the sweep in one line naming the folder, exit 1."""
    try:
        yield
    except Exception as error:
        full = no_space(error)
        if full is None:
            raise
        where = Path(full.filename).parent if full.filename else Path(sweep_dir)
        folder = sweep_dir if where.absolute().is_relative_to(Path(sweep_dir).absolute()) else where
        cause = f"no space left on device in {folder}; free some and rerun the sweep"
        mark = functools.partial(mark_unfinished, quiet=True, error=cause)

        def line(n: int) -> str:
            return (
                f"error: no space left on device in {folder}: the sweep stopped ({n} job(s) it "
                "cut short recorded as failed, as far as the disk took records); free some "
                "space and rerun the same command to resume"
            )

        stop_sweep(sweep_dir, mark, line, 1)


def die_with_parent(main_pid: int | None) -> None:
    """In a worker of the main process `main_pid`: be killed by the kernel when it dies (a
    SIGKILL leaves it no time to end us), leave Ctrl-C to it, and exit if it is gone already."""
    global _guarded
    if _guarded or main_pid is None or os.getpid() == main_pid:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not Linux: the worker is not guarded
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if os.getppid() != main_pid:  # the main process died before this worker's first job
        os._exit(1)
    _guarded = True
