"""Run and sweep folders: made before anything is written into them, or refused in one line
(a ConfigError naming the key, the path and why)."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.errors import ConfigError, exit_on_config_error


def make_folder(key: str, path: str | Path) -> None:
    """Make the folder `path`, or raise ConfigError naming `key` and why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        why = _file_in_place(path)
        if why is None and error.errno == errno.ENAMETOOLONG:
            why = _too_long(path)
        why = why or f"{error.filename or path}: {error.strerror or error}"
        raise ConfigError(key, str(path), f"a folder that can be made ({why})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(key, str(path), "a folder this process can write into")


def refuse_file_in_place(key: str, path: str | Path) -> None:
    """Raise ConfigError naming `key` if a file stands where `path` or a parent should be."""
    why = _file_in_place(Path(path))
    if why is not None:
        raise ConfigError(key, str(path), f"a folder that can be made ({why})")


def _file_in_place(path: Path) -> str | None:
    for folder in (path, *path.parents):
        with contextlib.suppress(OSError):  # a name too long to look up: not a file
            if folder.exists() and not folder.is_dir():
                return f"{folder} is a file, not a folder"
    return None


def name_max(path: Path) -> int:
    """The longest file name (bytes) the file system of `path` holds: NAME_MAX, 255 on most."""
    try:
        existing = next(p for p in (path.absolute(), *path.absolute().parents) if p.is_dir())
        return os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, StopIteration, ValueError):
        return 255


def _too_long(path: Path) -> str:
    """Which name of `path` is longer than its file system holds, else the whole path is."""
    longest, limit = max(path.parts, key=len), name_max(path)
    if len(longest) <= limit:  # every name fits: the path is longer than PATH_MAX
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
