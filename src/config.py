"""Config checks shared by every entry point: one place that says which values are allowed.

A wrong value raises `ConfigError`, whose message names the key and what is allowed;
`exit_on_config_error` turns it into one line on stderr and exit status 2.
`OutputFolderCheck` (a Hydra callback) refuses a run or sweep folder that cannot be made.
"""

from __future__ import annotations

import argparse
import functools
import numbers
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class ConfigError(ValueError):
    """A config value that is not allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def require_int(key: str, value: Any, minimum: int | None = None) -> None:
    """Refuse `value` unless it is an integer (at least `minimum`, when given)."""
    if not _is_int(value) or (minimum is not None and value < minimum):
        allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "")
        raise ConfigError(key, value, allowed)


def require_number(
    key: str, value: Any, *, minimum: float | None = None, positive: bool = False
) -> None:
    """Refuse `value` unless it is a real number (> 0 or >= `minimum`, when asked)."""
    ok = _is_number(value) and value == value  # value == value rules out NaN
    if ok and positive:
        ok = value > 0
    if ok and minimum is not None:
        ok = value >= minimum
    if not ok:
        bound = " > 0" if positive else (f" >= {minimum}" if minimum is not None else "")
        raise ConfigError(key, value, f"a number{bound}")


def require_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    """Refuse `value` unless it is one of `choices`."""
    choices = sorted(choices)
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))


# -- folders ---------------------------------------------------------------------------------


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


def _why_not_made(path: Path, error: OSError) -> str:
    """A file in the folder's place or above it, else the OS's reason (a read-only disk...)."""
    for folder in (path, *path.parents):
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a folder"
    return f"{error.filename or path}: {error.strerror or error}"


class OutputFolderCheck(Callback):
    """A Hydra callback: before a run (or a sweep), make its folder, or end the process with
    one line naming the path and why, exit status 2 (Hydra would end in a traceback)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_on_config_error(make_folder, "hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_on_config_error(make_folder, "hydra.sweep.dir", config.hydra.sweep.dir)


# -- memory ----------------------------------------------------------------------------------


def memory_available() -> int:
    """Bytes this process can still allocate: the kernel's MemAvailable (free memory plus the
    caches it can drop), within the cgroup's limit when there is one (a container's)."""
    available = None
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024  # its kB are KiB
    except (OSError, ValueError):
        pass
    if available is None:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    cgroup = "/sys/fs/cgroup/"
    try:
        with open(cgroup + "memory.max") as limit, open(cgroup + "memory.current") as used:
            text = limit.read().strip()
            if text != "max":
                available = min(available, int(text) - int(used.read()))
    except (OSError, ValueError):
        pass
    return available


def format_bytes(n: int) -> str:
    """1234567890 -> '1.2 GB' (GB: 10**9 bytes); from 1000 PB on, a power of ten of bytes."""
    if n >= 1e18:
        return f"{n:.1e} bytes"
    for unit, scale in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n / 1e6:.1f} MB"


# -- the command line ------------------------------------------------------------------------


def _exit_on_config_error(check: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """check(...), or for a ConfigError, its line on stderr and exit status 2."""
    try:
        return check(*args, **kwargs)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def exit_on_config_error(task: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task so that a ConfigError ends the process with one line and status 2."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _exit_on_config_error(task, *args, **kwargs)

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the entry points that are not Hydra apps (src.report, src.search, the
    benchmarks): a wrong argument is refused as a bad config value is, in one line on stderr
    with exit status 2 (argparse's own refusal prints its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
