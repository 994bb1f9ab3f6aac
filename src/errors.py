"""A wrong config value, refused the same way by every entry point: one line, exit status 2.

The bounds below are those of what the numbers feed: the generators, float32 weights, int64 sizes.
"""

from __future__ import annotations

import argparse
import functools
import math
import numbers
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

# Seeds: what every generator the project seeds takes. Torch's take up to 2**64-1 (a negative
# seed read as 2**64 plus it); numpy's RandomState and Lightning's seed_everything stop at 2**32-1.
SEED_MAX = 2**32 - 1
INT64_MAX = 2**63 - 1  # torch's sizes and numpy's and pandas' integers are int64
# float32, the MLP's dtype: a larger number is inf, a positive one below the smallest normal ~0.
FLOAT32_MAX = 3.4028234663852886e38
FLOAT32_TINY = 1.1754943508222875e-38


class ConfigError(ValueError):
    """A config value that is not allowed."""

    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


def _is_number(value: Any, kind: type = numbers.Real) -> bool:
    return isinstance(value, kind) and not isinstance(value, bool)


def _int_text(n: int) -> str:
    """2**63-1 for 9223372036854775807 (a bound named by what it is), else the digits."""
    return f"2**{(n + 1).bit_length() - 1}-1" if n > 2**16 and (n + 1) & n == 0 else str(n)


def require_int(
    key: str, value: Any, minimum: int | None = None, maximum: int | None = None
) -> None:
    """Refuse `value` unless it is an integer (from `minimum` to `maximum`, when given)."""
    ok = _is_number(value, numbers.Integral)
    ok = ok and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
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
    try:
        ok = _is_number(value) and math.isfinite(value)
    except OverflowError:  # an integer of over 308 digits: too large for a float
        ok = False
    ok = ok and (not positive or value > 0) and (minimum is None or value >= minimum)
    if not ok:
        bound = " > 0" if positive else (f" >= {minimum}" if minimum is not None else "")
        raise ConfigError(key, value, f"a finite number{bound}")


def require_float32(key: str, value: Any, *, positive: bool = False) -> None:
    """Refuse `value` unless it is a number from 0 (FLOAT32_TINY if it must be > 0) to
    FLOAT32_MAX, which float32 holds."""
    minimum = FLOAT32_TINY if positive else 0
    if not (_is_number(value) and minimum <= value <= FLOAT32_MAX):  # NaN compares false
        allowed = f"a number from {minimum:.3g} to {FLOAT32_MAX:.3g} (float32, the model's dtype)"
        raise ConfigError(key, value, allowed)


def require_choice(key: str, value: Any, choices: Iterable[str]) -> None:
    """Refuse `value` unless it is one of `choices`."""
    choices = sorted(choices)
    if value not in choices:
        raise ConfigError(key, value, "one of " + ", ".join(choices))


def exit_on_config_error(task: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a Hydra task so that a ConfigError ends the process with one line and status 2."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper


class ArgumentParser(argparse.ArgumentParser):
    """argparse for the entry points that are not Hydra apps: a wrong argument is refused in
    one line, exit status 2, as a bad config value is (not after argparse's usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")
