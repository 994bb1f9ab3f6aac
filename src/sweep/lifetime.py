"""A sweep's processes live and die together.

The main process: SIGTERM, SIGHUP and Ctrl-C end the sweep with one line, after its workers
and their children (wandb's services) are killed and the jobs they were running recorded as
failed. A SIGKILL cannot be caught: each joblib worker asks the kernel to kill it when its
parent dies (Linux's PR_SET_PDEATHSIG), so it writes nothing after the main process is gone,
and wandb's service ends with the worker it serves.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from pathlib import Path

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
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
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


def end_sweep_on_signals(sweep_dir: Path, mark_unfinished) -> None:
    """In the sweep's main process: on SIGTERM, SIGHUP or Ctrl-C, kill the workers, record
    what they were running as failed (`mark_unfinished(sweep_dir)`), say so in one line and
    exit with 128 + the signal's number, without a traceback."""

    def stop(signum, frame) -> None:
        # From here on the sweep's one line is all it says: a process started meanwhile (loky
        # restarts its resource tracker when it sees its workers die) writes to /dev/null.
        sys.stderr.flush()
        stderr = os.dup(2)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        for cleanup in _on_stop:
            cleanup()
        kill_descendants()
        unfinished = mark_unfinished(sweep_dir, quiet=True)
        line = (
            f"stopped by {_SIGNALS[signum]}: {len(unfinished)} running job(s) recorded as "
            f"failed in {sweep_dir}; rerun the same command to resume\n"
        )
        os.write(stderr, line.encode())
        os._exit(128 + signum)

    for signum in _SIGNALS:
        signal.signal(signum, stop)


def die_with_parent(main_pid: int | None) -> None:
    """In a worker process of the main process `main_pid`: be killed by the kernel when that
    process dies, and leave Ctrl-C to it; exit at once if it is gone already."""
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
