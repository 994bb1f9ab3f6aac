"""A wrong config value, refused the same way by every entry point: one line, exit status 2.

A wrong value raises `ConfigError`, whose message names the key and what is allowed; the
`require_*` checks here are one place that says which values are allowed, the bounds below
what the numbers feed: torch's and numpy's generators, float32 weights, int64 sizes.
`exit_on_config_error` turns a ConfigError into one line on stderr and exit status 2, and
`ArgumentParser` refuses a wrong argument of a command that is not a Hydra app the same way.
Folders: src/folders.py; memory: src/memory.py.
"""

from __future__ import annotations

import argparse
import functools
import math
import numbers
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

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
