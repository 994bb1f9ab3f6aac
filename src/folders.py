"""Run and sweep folders: made before anything is written into them, or refused in one line.

`make_folder` makes a folder or raises ConfigError naming the key, the path and why it cannot be
made (a file in its place, a name longer than the file system holds, the OS's reason);
`refuse_file_in_place` refuses a file given as a folder; `name_max` is the longest name a file
system holds; `OutputFolderCheck` (a Hydra callback, `hydra.callbacks`) refuses a run or sweep
folder that cannot be made.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.errors import ConfigError, exit_on_config_error


def make_folder(key: str, path: str | Path) -> None:
    """Make the folder `path` (and its parents) unless it is there, or raise ConfigError naming
    `key`, the path and why it cannot be made or written into."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = _why_not_made(path, error)
        raise ConfigError(key, str(path), f"a folder that can be made ({why})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(key, str(path), "a folder this process can write into")


def refuse_file_in_place(key: str, path: str | Path) -> None:
    """Raise ConfigError naming `key` if a file stands where the folder `path` or one of its
    parents should be (a file given as the output folder)."""
    file = _file_in_place(Path(path))
    if file is not None:
        raise ConfigError(
            key, str(path), f"a folder that can be made ({file} is a file, not a folder)"
        )


def _file_in_place(path: Path) -> Path | None:
    for folder in (path, *path.parents):
        try:
            if folder.exists() and not folder.is_dir():
                return folder
        except OSError:  # a name too long to look up: not a file
            continue
    return None


def _why_not_made(path: Path, error: OSError) -> str:
    """A file in the folder's place or above it, a name longer than the file system holds,
    else the OS's reason (a read-only disk...)."""
    file = _file_in_place(path)
    if file is not None:
        return f"{file} is a file, not a folder"
    if error.errno == errno.ENAMETOOLONG:
        return _too_long(path)
    return f"{error.filename or path}: {error.strerror or error}"


def name_max(path: Path) -> int:
    """The longest file name (in bytes) the file system of `path`, or of the nearest folder
    above it that exists, holds: NAME_MAX, 255 on most."""
    try:
        existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.is_dir())
        return os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, StopIteration, ValueError):
        return 255


def _too_long(path: Path) -> str:
    """Which name of `path` is longer than its file system holds (see name_max)."""
    longest = max(path.parts, key=len)
    limit = name_max(path)
    if len(longest) <= limit:  # every name fits: the whole path is too long (PATH_MAX)
        return (
            f"a path of {len(str(path.absolute()))} characters, longer than the file system takes"
        )
    return (
        f"a name of {len(longest)} characters in it ({longest[:20]}...), "
        f"the file system takes at most {limit}"
    )


class OutputFolderCheck(Callback):
    """A Hydra callback: before a run, make its folder, or end the process with one line naming
    the path and why, exit status 2 (Hydra would end in a traceback). A sweep's sweeper makes
    its folder once its settings pass (src.sweep.preflight's open_sweep)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        exit_on_config_error(make_folder)("hydra.run.dir", config.hydra.run.dir)
