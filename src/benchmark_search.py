"""The report's search (hparams_search=bayes: 30 trials, 50 epochs, its space) measured.

    python -m src.benchmark_search                       # everything below (about 25 min, 2 cores)
    python -m src.benchmark_search --sampler-seeds 0 --trials 5    # a quick look

1. Seeds per trial: the search with 1 seed per trial (`seed=0`) and with 3 (`seed=range(3)`,
   the default), same sampler seed, for each sampler seed. Each search's wall time is the whole
   command's (start-up, the report, wandb off). Which search found the better configuration is
   judged on seeds neither saw: each best configuration is retrained with seeds 100-105 (one
   stacked run) and the mean of their final val_loss compared.
2. Two trials at a time (`hydra.sweeper.n_jobs=2`) against one at a time (3 seeds a trial).
3. Pruning (`hydra.sweeper.pruner=median`) against none: wall time and the best trial's value.

Every command runs in a fresh process and is printed before its figure, so each figure can
be reproduced on its own. Measured on 2 cores, CPU (sampler seed: wall time, best value, the
best retrained on seeds 100-105):

    sampler seed | 1 seed a trial              | 3 seeds a trial              | time, 3 / 1
    0            | 101 s, 4.7e-07, 5.2e-06     | 148 s, 1.17e-06, 1.18e-06    | 1.47x
    1            | 155 s, 1.05e-06, 1.45e-06   | 242 s, 1.37e-06, 1.20e-06    | 1.56x
    2            | 170 s, 1.24e-06, 1.16e-06   | 165 s, 2.72e-06, 2.06e-06    | 0.97x

n_jobs=2: 119 s against 148 s. pruner=median: 67 s against 148 s, 22 of 30 pruned, best
1.5e-06 against 1.17e-06. A one-seed search's best is its luckiest seed (4.7e-07, then 5.2e-06
on fresh seeds); a 3-seed mean predicts fresh seeds (1.17e-06, then 1.18e-06) and picked the
better configuration for 2 of 3 sampler seeds.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from src.errors import ArgumentParser
from src.run.files import member_dir, read_metrics
from src.run.schema import SEED_KEY, STACK_KEY

FRESH_SEEDS = list(range(100, 106))


def _run(command: list[str]) -> float:
    print("  $ " + " ".join(shlex.quote(c) for c in command), flush=True)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: the search finished, some trial failed
        sys.exit(f"error: the command failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds


def search(sweep: Path, trials: int, extra: list[str]) -> tuple[float, dict]:
    """Run one search; its wall time and best trial (optimization_results.yaml)."""
    from omegaconf import OmegaConf

    command = [sys.executable, "-m", "src.train", "-m", "hparams_search=bayes", "logger=none",
               f"hydra.sweeper.n_trials={trials}", f"hydra.sweep.dir={sweep}", *extra]  # fmt: skip
    seconds = _run(command)
    best = OmegaConf.to_container(OmegaConf.load(sweep / "optimization_results.yaml"))
    return seconds, best


def retrain(best: dict, out: Path) -> float:
    """The best configuration trained again with FRESH_SEEDS as one stack, for the search's 50
    epochs: the mean of their final val_loss."""
    params = [f"{k}={v}" for k, v in best["best_params"].items()]
    seeds = ",".join(map(str, FRESH_SEEDS))
    command = [sys.executable, "-m", "src.train", "hparams_search=bayes", "logger=none",
               *params, f"{STACK_KEY}=[{seeds}]", f"hydra.run.dir={out}"]  # fmt: skip
    _run(command)
    losses = [read_metrics(member_dir(out, s)) for s in FRESH_SEEDS]  # null read back as NaN
    return statistics.fmean(r["val_loss"] for r in losses)


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(
        prog="python -m src.benchmark_search",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--trials", type=int, default=30, help="trials per search (default 30)")
    parser.add_argument("--sampler-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip", nargs="*", default=[], choices=["parallel", "pruning"])
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="benchmark-search-"))
    print(f"The report's search, {args.trials} trials of 50 epochs, on this machine; in {tmp}")
    rows, times = [], {}
    for sampler_seed in args.sampler_seeds:
        row = [sampler_seed]
        for label, seeds in (("1 seed", f"{SEED_KEY}=0"), ("3 seeds", f"{SEED_KEY}=range(3)")):
            sweep = tmp / f"sampler{sampler_seed}-{label.replace(' ', '')}"
            extra = [f"hydra.sweeper.sampler.seed={sampler_seed}", seeds]
            seconds, best = search(sweep, args.trials, extra)
            fresh = retrain(best, sweep / "retrained")
            times[(sampler_seed, label)] = seconds
            row += [seconds, best["best_value"], fresh, best["best_params"]]
            print(f"  -> {label}: {seconds:.0f} s, best value {best['best_value']:.4g}, "
                  f"retrained on seeds 100-105: {fresh:.4g}", flush=True)  # fmt: skip
        rows.append(row)
    print("\nsampler seed | 1 seed: time, best, fresh seeds | 3 seeds: time, best, fresh seeds "
          "| time 3/1 | better on fresh seeds")  # fmt: skip
    for s, t1, b1, f1, _, t3, b3, f3, _ in rows:
        better = "3 seeds" if f3 < f1 else "1 seed" if f1 < f3 else "tie"
        print(f"{s} | {t1:.0f} s, {b1:.4g}, {f1:.4g} | {t3:.0f} s, {b3:.4g}, {f3:.4g} "
              f"| {t3 / t1:.2f}x | {better}")  # fmt: skip
    base = [f"hydra.sweeper.sampler.seed={args.sampler_seeds[0]}", f"{SEED_KEY}=range(3)"]
    one = times[(args.sampler_seeds[0], "3 seeds")]
    if "parallel" not in args.skip:
        seconds, _ = search(tmp / "parallel", args.trials, [*base, "hydra.sweeper.n_jobs=2"])
        print(f"two trials at a time: {seconds:.0f} s against {one:.0f} s one at a time "
              f"({one / seconds:.2f}x faster)")  # fmt: skip
    if "pruning" not in args.skip:
        seconds, best = search(tmp / "pruned", args.trials, [*base, "hydra.sweeper.pruner=median"])
        pruned = (tmp / "pruned" / "results.csv").read_text().count(",pruned,") // 3
        unpruned = rows[0][6]
        print(f"pruning (median): {seconds:.0f} s, best value {best['best_value']:.4g}, "
              f"{pruned} of {args.trials} trials pruned; without: {one:.0f} s, best value "
              f"{unpruned:.4g}")  # fmt: skip


if __name__ == "__main__":
    main()
