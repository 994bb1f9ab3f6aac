"""Framework cost: a sweep through `python -m src.train -m` against a bare PyTorch loop.

    python -m src.benchmark                        # the 36-job grid, default launcher
    python -m src.benchmark hydra/launcher=basic   # extra overrides go to the sweep
    python -m src.benchmark --overhead             # where a job's extra time goes

Both sides run in fresh processes (start-up counted), one torch thread per training, on
the same data, batch order, initial weights, epochs and optimizer; the bare loop only
keeps what an experimenter needs (losses and accuracies). The sweep's final val_loss of
every job is compared with the bare loop's, to show that the trainings are the same.
"""

from __future__ import annotations

import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from src.config import ArgumentParser
from src.generators import make_splits
from src.nets import OPTIMIZERS, build_mlp

CONF = Path(__file__).resolve().parent.parent / "conf"
DEPTHS, WIDTHS, SEEDS = (0, 2, 5), (1, 10), range(6)


def _defaults():
    data = OmegaConf.load(CONF / "data" / "xor.yaml")
    model = OmegaConf.load(CONF / "model" / "mlp.yaml")
    trainer = OmegaConf.load(CONF / "trainer" / "default.yaml")
    return data, model, trainer


def _evaluate(net, loss_fn, x, y) -> tuple[float, float]:
    with torch.no_grad():
        logits = net(x).squeeze(-1)
        return float(loss_fn(logits, y)), float(((logits > 0).float() == y).float().mean())


def bare_training(depth: int, width: int, seed: int, splits, data, model, epochs: int) -> dict:
    """One training written as plain PyTorch, doing what src.train does per job."""
    torch.manual_seed(seed)
    net = build_mlp(depth, width, model.activation)
    opt = OPTIMIZERS[model.optimizer](net.parameters(), lr=model.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    order_gen = torch.Generator().manual_seed(seed)
    (x, y), (xv, yv), (xt, yt) = splits["train"], splits["val"], splits["test"]
    history = []
    for _ in range(epochs):
        net.train()
        loss_sum, correct = 0.0, 0
        for idx in torch.randperm(len(x), generator=order_gen).split(data.batch_size):
            logits = net(x[idx]).squeeze(-1)
            loss = loss_fn(logits, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += int(((logits.detach() > 0).float() == y[idx]).sum())
        net.eval()
        val_loss, val_acc = _evaluate(net, loss_fn, xv, yv)
        history.append((loss_sum / len(x), correct / len(x), val_loss, val_acc))
    test_loss, _ = _evaluate(net, loss_fn, xt, yt)
    return {"val_loss": history[-1][2], "test_loss": test_loss}


def run_bare() -> None:
    """The bare side: all the grid's trainings in this process; prints their val_loss as JSON."""
    data, model, trainer = _defaults()
    torch.set_num_threads(trainer.num_threads)
    splits = make_splits(data.name, data.n_train, data.n_val, data.n_test, data.noise, data.seed)
    results = {}
    for depth, width, seed in itertools.product(DEPTHS, WIDTHS, SEEDS):
        run = bare_training(depth, width, seed, splits, data, model, trainer.max_epochs)
        results[f"{depth},{width},{seed}"] = run["val_loss"]
    print(json.dumps(results))


def _mean_seconds(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def run_overhead() -> None:
    """The framework's cost split into its parts, measured in this (fresh) process."""
    start = time.perf_counter()
    import pytorch_lightning  # noqa: F401  (torch is imported already, as in the bare process)

    lightning_s = time.perf_counter() - start
    start = time.perf_counter()
    import wandb  # noqa: F401
    from hydra import compose, initialize_config_dir

    from src.train import train

    rest_s = time.perf_counter() - start

    data, model, trainer = _defaults()
    torch.set_num_threads(trainer.num_threads)
    splits = make_splits(data.name, data.n_train, data.n_val, data.n_test, data.noise, data.seed)
    with tempfile.TemporaryDirectory() as tmp, initialize_config_dir(str(CONF), version_base="1.3"):

        def job(logger: str) -> None:
            overrides = [f"logger={logger}", f"output_dir={tmp}/{logger}", "model.depth=2"]
            train(compose("train", overrides=overrides))

        compose_s = _mean_seconds(lambda: compose("train", return_hydra_config=True), 10)
        bare = _mean_seconds(lambda: bare_training(2, 10, 0, splits, data, model, 25), 5)
        job("none")  # warm-up: first-call costs are counted in the imports
        lightning = _mean_seconds(lambda: job("none"), 5)
        start = time.perf_counter()
        job("wandb")  # the first run starts this process's wandb service
        first_wandb = time.perf_counter() - start
        wandb_s = _mean_seconds(lambda: job("wandb"), 5)

    print("per process (once per worker):")
    print(f"  import pytorch_lightning (after torch) : {lightning_s:6.2f} s")
    print(f"  import wandb, hydra, src.train         : {rest_s:6.2f} s")
    print(f"  wandb service start (first run)        : {first_wandb - wandb_s:6.2f} s")
    print("per job (depth 2, width 10, 25 epochs):")
    print(f"  bare PyTorch training                  : {bare:6.3f} s")
    print(f"  + Lightning (train(), logger=none)     : {lightning - bare:6.3f} s")
    print(f"  + wandb offline run                    : {wandb_s - lightning:6.3f} s")
    print("  + Hydra composition (x2 per job: the sweeper checks every job, the launcher")
    print(f"    composes it again)                   : {2 * compose_s:6.3f} s")


def _timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"benchmark: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _sweep_val_losses(sweep_dir: Path) -> dict[str, float]:
    results = {}
    for path in sweep_dir.rglob("metrics.json"):
        metrics = json.loads(path.read_text())
        m = metrics["config"]
        results[f"{m['model']['depth']},{m['model']['width']},{m['seed']}"] = metrics["val_loss"]
    return results


def parse_args(argv: list[str] | None = None):
    """The command line; a wrong argument (an unknown option, an override Hydra cannot parse,
    overrides with --bare or --overhead) ends it in one line, exit status 2."""
    parser = ArgumentParser(prog="python -m src.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--bare", action="store_true", help="run only the bare side (internal)")
    parser.add_argument("--overhead", action="store_true", help="split the per-job overhead")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for the sweep")
    args = parser.parse_args(argv)
    if args.overrides and (args.bare or args.overhead):
        parser.error("overrides go to the sweep; --bare and --overhead take none")
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in args.overrides:
        try:
            OverridesParser.create().parse_override(override)
        except Exception:  # Hydra's message spans lines; say which argument, in one
            parser.error(f"{override!r} is not a Hydra override (key=value)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.bare:
        return run_bare()
    if args.overhead:
        return run_overhead()

    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir = Path(tmp) / "sweep"
        grid = [
            f"model.depth={','.join(map(str, DEPTHS))}",
            f"model.width={','.join(map(str, WIDTHS))}",
            f"seed=range({len(SEEDS)})",
        ]
        sweep_cmd = [sys.executable, "-m", "src.train", "-m", *grid]
        sweep_cmd += [f"hydra.sweep.dir={sweep_dir}", *args.overrides]
        sweep_s, _ = _timed(sweep_cmd)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        bare_s, out = _timed([sys.executable, "-m", "src.benchmark", "--bare"])
        bare, sweep = json.loads(out), _sweep_val_losses(sweep_dir)

    n = len(bare)
    diff = max(abs(bare[k] - sweep[k]) for k in bare) if bare.keys() == sweep.keys() else None
    print(f"grid: {' '.join(grid + args.overrides)} ({n} trainings)")
    print(f"python -m src.train -m : {sweep_s:7.1f} s  ({sweep_s / n:.2f} s/job)")
    print(f"bare PyTorch process   : {bare_s:7.1f} s  ({bare_s / n:.2f} s/training)")
    print(f"ratio                  : {sweep_s / bare_s:7.2f} x")
    print(f"per-job framework cost : {(sweep_s - bare_s) / n:7.2f} s")
    print(f"peak memory, largest process of the sweep: {peak_mb:.0f} MB")
    if diff is None:
        print(f"same trainings         : NO, the sweep finished {len(sweep)} of {n} jobs")
    else:
        print(f"same trainings         : max |val_loss sweep - bare| = {diff:.2e}")


if __name__ == "__main__":
    main()
