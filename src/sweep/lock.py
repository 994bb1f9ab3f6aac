"""One writer per sweep folder: the sweep's main process holds `<sweep>/.lock` for its life.

The lock is an OS file lock (flock), so it goes with the process however that ends (a kill,
a crash): a stale lock never blocks. The file names its holder (host and pid) for the
refusal of a second sweep and for `python -m src.report`, which draws what has finished.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from src.errors import ConfigError

LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # sweep folder -> the open file holding its lock, for the process


def holder(sweep_dir: Path) -> str | None:
    """Who holds the sweep folder's lock ("host pid 1234"), or None if nobody does."""
    path = Path(sweep_dir) / LOCK_FILE
    if Path(sweep_dir).resolve() in _held:
        return f"{socket.gethostname()} pid {os.getpid()}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.read(fd, 200).decode(errors="replace").strip() or "another process"
    finally:
        os.close(fd)  # closing releases a shared lock taken just to test
    return None


def lock_sweep(sweep_dir: Path) -> None:
    """Take the folder's lock for the rest of this process, or raise ConfigError naming the
    sweep that holds it."""
    sweep_dir = Path(sweep_dir).resolve()
    if sweep_dir in _held:
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(sweep_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        who = os.read(fd, 200).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise ConfigError(
            "hydra.sweep.dir",
            str(sweep_dir),
            f"a folder no other sweep is writing to (a sweep is running there: {who}); "
            "wait for it to end, or choose another folder",
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{socket.gethostname()} pid {os.getpid()}\n".encode())
    _held[sweep_dir] = fd
