"""Learning-rate schedules. Each holds the current rate in `.lr`; the training loop calls
`after_epoch(epoch, train_loss)` once per epoch (epochs count from 0)."""

from __future__ import annotations

SCHEDULES = ("constant", "step", "exponential", "adaptive")


class Constant:
    def __init__(self, lr: float):
        self.base = self.lr = lr

    def after_epoch(self, epoch: int, train_loss: float) -> None:
        pass


class StepDecay(Constant):
    """lr * gamma^(number of completed blocks of `step_size` epochs)."""

    def __init__(self, lr: float, gamma: float, step_size: int):
        super().__init__(lr)
        self.gamma, self.step_size = gamma, step_size

    def after_epoch(self, epoch: int, train_loss: float) -> None:
        self.lr = self.base * self.gamma ** ((epoch + 1) // self.step_size)


class ExponentialDecay(StepDecay):
    """lr * gamma^(completed epochs)."""

    def __init__(self, lr: float, gamma: float):
        super().__init__(lr, gamma, 1)


class Adaptive(Constant):
    """The report's rule (2.2.1), made safe: keep the training loss falling at a target pace.

    The pace: the loss's relative decrease per epoch, averaged over the last `smoothing`
    epochs. Its mean over epochs [window_start, window_end) is the target, which then shrinks
    by `target_decay` every epoch. After the window the rate is multiplied by 1 + gain when the
    loss falls slower than the target, 1 - gain when faster, 0.5 when it rose, and kept within
    [min_factor, max_factor] x the initial rate.
    """

    def __init__(
        self,
        lr: float,
        window_start: int = 75,
        window_end: int = 125,
        smoothing: int = 10,
        gain: float = 0.01,
        target_decay: float = 1.0,
        min_factor: float = 0.1,
        max_factor: float = 10.0,
    ):
        super().__init__(lr)
        self.window_start, self.window_end, self.smoothing = window_start, window_end, smoothing
        self.gain, self.target_decay = gain, target_decay
        self.lr_min, self.lr_max = lr * min_factor, lr * max_factor
        self.losses: list[float] = []
        self.window_paces: list[float] = []
        self.target: float | None = None

    def pace(self) -> float:
        k = min(self.smoothing, len(self.losses) - 1)
        before, now = self.losses[-1 - k], self.losses[-1]
        return (before - now) / (k * abs(before)) if before != 0.0 else 0.0

    def after_epoch(self, epoch: int, train_loss: float) -> None:
        self.losses.append(train_loss)
        if len(self.losses) < 2 or epoch < self.window_start:
            return
        if epoch < self.window_end:
            self.window_paces.append(self.pace())
            if epoch == self.window_end - 1:
                self.target = sum(self.window_paces) / len(self.window_paces)
            return
        self.target *= self.target_decay
        if self.losses[-1] > self.losses[-2]:
            factor = 0.5
        elif self.pace() < self.target:
            factor = 1.0 + self.gain
        else:
            factor = 1.0 - self.gain
        self.lr = min(max(self.lr * factor, self.lr_min), self.lr_max)


def make_schedule(lr: float, name: str, gamma: float, step_size: int, **adaptive) -> Constant:
    """The schedule called `name` (SCHEDULES), from the keys of the config's `schedule`."""
    if name == "step":
        return StepDecay(lr, gamma, step_size)
    if name == "exponential":
        return ExponentialDecay(lr, gamma)
    if name == "adaptive":
        return Adaptive(lr, **adaptive)
    if name != "constant":
        raise ValueError(f"make_schedule: {name!r} is not one of {SCHEDULES}")
    return Constant(lr)
