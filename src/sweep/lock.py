"""One writer per sweep folder: the main process holds `<sweep>/.lock` (an flock, which goes
with the process however it ends: never stale), a file naming its host and pid."""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from src.errors import ConfigError

LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # sweep folder -> the open file holding its lock, for the process


def _who(fd: int) -> str:
    return os.read(fd, 200).decode(errors="replace").strip() or "another process"


def holder(sweep_dir: Path) -> str | None:
    """Who holds the sweep folder's lock ("host pid 1234"), or None if nobody does."""
    if Path(sweep_dir).resolve() in _held:
        return f"{socket.gethostname()} pid {os.getpid()}"
    try:
        fd = os.open(Path(sweep_dir) / LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _who(fd)
    finally:
        os.close(fd)  # closing releases a shared lock taken just to test
    return None


def lock_sweep(sweep_dir: Path) -> None:
    """Take the folder's lock for this process's life, or raise ConfigError naming its holder."""
    sweep_dir = Path(sweep_dir).resolve()
    if sweep_dir in _held:
        return
    sweep_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(sweep_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        who = _who(fd)
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
