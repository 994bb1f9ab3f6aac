"""The report's part-2 claim measured: is the training loss "consistently higher than the
validation loss", and why?

    python -m src.autodiff.split_gap                 # 3 fitting regimes x data seeds 0-19 and 42
    python -m src.autodiff.split_gap --seeds 50

The report saw it at data seed 42 and blamed the split's sizes, but training and validation
both hold 105 points (35% / 35% / 30%): what differs is the noise drawn into each. This trains
the course's run, `underfit` and `goodfit` (the report excepts over-fitting) on other data
seeds and prints per regime how often the training loss ends higher (95% bootstrap interval),
the mean gap, and its correlation with the gap between the sets' own summed squared noise.
"Almost all the times" holds when the whole interval lies above 0.9, fails when below.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from scipy import stats

from src.autodiff.data import draw, split_points
from src.errors import ArgumentParser

REGIMES = {"course": [], "underfit": ["experiment=underfit"], "goodfit": ["experiment=goodfit"]}
COURSE_SEED = 42
ALMOST_ALL = 0.9


def noise_energy(seed: int, noise: float = 0.5, n_samples: int = 300) -> tuple[float, float]:
    """The summed squared noise (y - f(x)) of the training and the validation set, in units of
    the training set's std of y (as the losses are)."""
    _, y, target = draw(noise, n_samples, 1, seed)
    n_train, n_train_val = split_points(n_samples)
    scaled = (y - target) / y[:n_train].std()
    return float(np.sum(scaled[:n_train] ** 2)), float(np.sum(scaled[n_train:n_train_val] ** 2))


def fit(regime: str, seed: int) -> tuple[float, float]:
    """The final training and validation loss of the regime trained on data seed `seed`."""
    from src.autodiff.train import compose_config, train

    cfg = compose_config(*REGIMES[regime], f"data.seed={seed}", "backend=matrix")
    with contextlib.redirect_stdout(io.StringIO()):  # its one line per run
        metrics = train(cfg)
    return metrics["train_loss"], metrics["val_loss"]


def share_interval(higher: np.ndarray) -> tuple[float, float]:
    sample, rng = (higher.astype(float),), np.random.default_rng(0)
    result = stats.bootstrap(sample, np.mean, n_resamples=9999, method="percentile", rng=rng)
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def verdict(low: float, high: float) -> str:
    if low > ALMOST_ALL:
        return "holds"
    if high < ALMOST_ALL:
        return "does not hold"
    return "not decided"


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        prog="python -m src.autodiff.split_gap", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seeds", type=int, default=20, help="data seeds 0..N-1, and 42")
    args = parser.parse_args(argv)
    seeds = sorted({*range(args.seeds), COURSE_SEED})
    noise = np.array([noise_energy(s) for s in seeds])
    noise_gap = noise[:, 0] - noise[:, 1]
    course = seeds.index(COURSE_SEED)
    print(
        f"train and validation: {split_points(300)[0]} points each; noise (sum of squares), "
        f"data seed {COURSE_SEED}: train {noise[course, 0]:.1f}, validation {noise[course, 1]:.1f}"
    )
    print(
        "regime    train>val (95% CI)       mean train-val  r(gap, noise gap)  "
        "seed 42 train/val  verdict"
    )
    for regime in REGIMES:
        losses = np.array([fit(regime, s) for s in seeds])
        gap = losses[:, 0] - losses[:, 1]
        higher = gap > 0
        low, high = share_interval(higher)
        r = stats.pearsonr(gap, noise_gap).statistic
        print(
            f"{regime:9s} {higher.mean():.2f} [{low:.2f}, {high:.2f}] of {len(seeds):2d}  "
            f"{gap.mean():+14.2f}  {r:17.2f}  {losses[course, 0]:7.2f} / {losses[course, 1]:5.2f}"
            f"  {verdict(low, high)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
