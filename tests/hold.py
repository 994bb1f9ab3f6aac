"""A Hydra callback for tests that stop a sweep half way: it holds one job in flight until the
process running it is killed, and says so with a file. No timing is involved: when the file
is there, the job is in the middle of its training and cannot finish.

    python -m src.train -m ... +hydra.callbacks.hold._target_=tests.hold.HoldJob \\
        +hydra.callbacks.hold.key=model.width +hydra.callbacks.hold.value=10 \\
        +hydra.callbacks.hold.signal_dir=<dir>

The job whose config has `key` == `value` trains its first epoch (its seeds' records and
wandb runs started), writes `<signal_dir>/held` (the pid of the process running it), then
blocks opening the FIFO `<signal_dir>/release`, which nobody writes. Every other job runs as
usual. The callback is left out of a rerun's command (Hydra's own overrides are not part of a
sweep's identity, so the rerun resumes the same sweep).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

HELD, RELEASE = "held", "release"


class HoldJob(Callback):
    def __init__(self, key: str, value: Any, signal_dir: str):
        self.key, self.value, self.signal_dir = key, value, Path(signal_dir)

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        # In the process that runs the job (a joblib worker, or the main process): if the job
        # is ours, its training is held at the end of its first epoch.
        if OmegaConf.select(config, self.key) != self.value:
            return
        from src.run.model import MLPClassifier

        epoch_end = MLPClassifier.on_train_epoch_end
        signal_dir = self.signal_dir

        def held(model: MLPClassifier) -> None:
            epoch_end(model)  # the epoch recorded and logged, as far as it goes
            held_file = signal_dir / HELD
            held_file.with_suffix(".tmp").write_text(str(os.getpid()))
            os.replace(held_file.with_suffix(".tmp"), held_file)  # whole when it is seen
            with open(signal_dir / RELEASE):  # blocks until a writer opens it: none does,
                pass  # but a test that releases the job, which then trains on unheld
            MLPClassifier.on_train_epoch_end = epoch_end

        MLPClassifier.on_train_epoch_end = held


def hold_overrides(signal_dir: Path, key: str, value: Any) -> list[str]:
    """The command-line overrides that hold the job with `key=value`; makes the FIFO."""
    signal_dir.mkdir(parents=True, exist_ok=True)
    os.mkfifo(signal_dir / RELEASE)
    return [
        "+hydra.callbacks.hold._target_=tests.hold.HoldJob",
        f"+hydra.callbacks.hold.key={key}",
        f"+hydra.callbacks.hold.value={value}",
        f"+hydra.callbacks.hold.signal_dir={signal_dir}",
    ]
