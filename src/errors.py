"""Config checks shared by every entry point: one place that says which values are allowed.

A wrong value raises `ConfigError`, whose message names the key and what is allowed;
`exit_on_config_error` turns it into one line on stderr and exit status 2. The bounds below
are what the numbers feed: torch's and numpy's generators, float32 weights, int64 sizes.
`OutputFolderCheck` (a Hydra callback) refuses a run or sweep folder that cannot be made.
"""

from __future__ import annotations

import argparse
import errno
import functools
import math
import numbers
import os
import resource
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# Seeds: 0 to 2**32-1, what every generator the project seeds takes. Torch's take up to
# 2**64-1 and read a negative seed as 2**64 plus it (seed -1 is seed 2**64-1); numpy's
# RandomState (the autodiff data, Optuna's samplers) and Lightning's seed_everything stop at
# 2**32-1; numpy's default_rng (the autodiff nets) takes any seed >= 0.
SEED_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1  # torch's sizes and numpy's and pandas' integers are int64
# The MLP trains in float32 (torch.finfo(torch.float32)): a larger number is inf, a positive
# one below its smallest normal number is (about) 0.
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38


class ConfigError(ValueError):
    """A config value that is not allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer of over 308 digits: too large for a float
        return False


def _int_text(n: int) -> str:
    """2**63-1 for 9223372036854775807 (a bound named by what it is), else the digits."""
    return f"2**{(n + 1).bit_length() - 1}-1" if n > 2**16 and (n + 1) & n == 0 else str(n)


def require_int(
    key: str, value: Any, minimum: int | None = None, maximum: int | None = None
) -> None:
    """Refuse `value` unless it is an integer (from `minimum` to `maximum`, when given)."""
    ok = _is_int(value)
    if ok and minimum is not None:
        ok = value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        if minimum is not None and maximum is not None:
            allowed = f"an integer from {minimum} to {_int_text(maximum)}"
        else:
            allowed = "an integer" + (f" >= {minimum}" if minimum is not None else "")
        raise ConfigError(key, value, allowed)


def require_seed(key: str, value: Any) -> None:
    """Refuse `value` unless every generator the project seeds takes it (see SEED_MAX)."""
    require_int(key, value, 0, SEED_MAX)


def require_number(
    key: str, value: Any, *, minimum: float | None = None, positive: bool = False
) -> None:
    """Refuse `value` unless it is a finite real number (> 0 or >= `minimum`, when asked)."""
    ok = _is_number(value) and _is_finite(value)
    if ok and positive:
        ok = value > 0
    if ok and minimum is not None:
        ok = value >= minimum
    if not ok:
        bound = " > 0" if positive else (f" >= {minimum}" if minimum is not None else "")
        raise ConfigError(key, value, f"a finite number{bound}")


def require_float32(key: str, value: Any, *, positive: bool = False) -> None:
    """Refuse `value` unless it is a number from 0 (FLOAT32_TINY for a key that must be > 0)
    to FLOAT32_MAX: float32, the MLP's dtype, turns a larger one into inf and a smaller
    positive one into about 0."""
    minimum = FLOAT32_TINY if positive else 0
    if not (_is_number(value) and minimum <= value <= FLOAT32_MAX):  # NaN compares false
        allowed = f"a number from {minimum:.3g} to {FLOAT32_MAX:.3g} (float32, the model's dtype)"
        raise ConfigError(key, value, allowed)


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
    """A Hydra callback: before a run (or a sweep), make its folder, or end the process with
    one line naming the path and why, exit status 2 (Hydra would end in a traceback)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_on_config_error(make_folder, "hydra.run.dir", config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_on_config_error(make_folder, "hydra.sweep.dir", config.hydra.sweep.dir)


# -- memory ----------------------------------------------------------------------------------


def memory_available() -> int:
    """Bytes this process can still allocate: the kernel's MemAvailable (free memory plus the
    caches it can drop), within the cgroup's limit when there is one (a container's) and a
    SLURM task's memory (hydra.launcher.mem_gb): a job too large is refused, not killed."""
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
    slurm_mb = os.environ.get("SLURM_MEM_PER_NODE")  # a SLURM task's limit, in MB
    if slurm_mb and slurm_mb.isdigit():
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # its KiB
        available = min(available, int(slurm_mb) * 2**20 - own)
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
    """argparse for the entry points that are not Hydra apps (src.report, the benchmarks): a
    wrong argument is refused as a bad config value is, in one line on stderr with exit status
    2 (argparse's own refusal prints its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
