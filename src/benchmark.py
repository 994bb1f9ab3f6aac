"""Framework cost: sweeps through `python -m src.train -m` against a bare PyTorch loop.

    python -m src.benchmark                        # the 36-job grid, a sweep's fixed cost
    python -m src.benchmark --card                 # the design-card grid (252 jobs), and 30 seeds
    python -m src.benchmark --planning             # a sweep's own cost at 42, 1,000 and 10,000
                                                   # configurations, trainings replaced by a no-op
    python -m src.benchmark --slurm --card         # the design-card grid on SLURM against
                                                   # joblib (--per-job-tasks: Hydra's own
                                                   # submitit_slurm, a task per job, too)
    python -m src.benchmark hydra/launcher=basic   # extra overrides go to the sweeps,
    python -m src.benchmark model.norm=layer       # and the bare loops follow data/model/trainer

Every side runs in fresh processes (start-up counted), one torch thread per training, on the
same data, batch order, initial weights, epochs and optimizer. The bare loop trains one run
after another and only keeps what an experimenter needs (losses and accuracies); the stacked
bare loop trains each configuration's seeds as one StackedMLP, in one process: what stacking
gives without any framework, so the sweep's ratio to it is the framework's own cost. The
sweep's final val_loss of every run is compared with both, to show that the trainings are the
same (up to float rounding: a stacked member's batched matmuls sum in another order than a
lone run's).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from src.errors import ArgumentParser
from src.run.files import METRICS_FILE, read_metrics, sweep_files, write_json_atomic
from src.run.generators import make_splits
from src.run.nets import StackedMLP, count_parameters, mlp_from_hparams, seeded_mlp
from src.run.schema import OPTIMIZERS, SEED_KEY, STACK_KEY

CONF = Path(__file__).resolve().parent.parent / "conf"
# (depths, widths, number of seeds)
SMALL = ((0, 2, 5), (1, 10), 6)
CARD = ((0, 1, 2, 3, 5, 10, 20), (1, 2, 3, 5, 10, 20), 6)
STABLE_DEPTH = 5  # deeper nets are chaotic: a member may land elsewhere than a lone run
GRID_KEYS = ("model.depth", "model.width", SEED_KEY, STACK_KEY)  # what the benchmark sweeps
SETTINGS = ("data", "model", "trainer")  # the config sections the bare loops follow


def settings(overrides: list[str] = ()) -> dict[str, dict]:
    """The data, model and trainer settings a sweep with these extra overrides trains with."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return {key: OmegaConf.to_container(cfg[key], resolve=True) for key in SETTINGS}


def _evaluate(net, loss_fn, x, y) -> torch.Tensor:
    with torch.no_grad():
        logits = net(x).squeeze(-1)
        return loss_fn(logits, y.expand_as(logits)).mean(-1)


def bare_training(depth: int, width: int, seeds: list[int], splits, data, model, epochs: int):
    """Plain PyTorch doing what src.train does: one seed trains a plain MLP, several one
    StackedMLP, as a sweep's job does. Returns each seed's val_loss."""
    options = {"residual": model.residual, "norm": model.norm, "init": model.init}
    nets = [
        seeded_mlp(s, depth=depth, width=width, activation=model.activation, **options)
        for s in seeds
    ]
    net = nets[0] if len(seeds) == 1 else StackedMLP(nets)
    opt = OPTIMIZERS[model.optimizer](net.parameters(), lr=model.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none")
    order_gens = [torch.Generator().manual_seed(seed) for seed in seeds]
    (x, y), (xv, yv), (xt, yt) = splits["train"], splits["val"], splits["test"]
    history = []
    for _ in range(epochs):
        net.train()
        orders = torch.stack([torch.randperm(len(x), generator=g) for g in order_gens])
        loss_sum, correct = 0.0, 0.0
        for idx in (orders[0] if len(seeds) == 1 else orders).split(data.batch_size, dim=-1):
            logits = net(x[idx]).squeeze(-1)
            per_seed = loss_fn(logits, y[idx]).mean(-1)
            opt.zero_grad()
            per_seed.sum().backward()
            opt.step()
            loss_sum += per_seed.detach() * idx.shape[-1]
            correct += ((logits.detach() > 0).float() == y[idx]).sum(-1)
        net.eval()
        val_loss = _evaluate(net, loss_fn, xv, yv)
        history.append((loss_sum / len(x), correct / len(x), val_loss))
    _evaluate(net, loss_fn, xt, yt)  # the test pass every run ends with
    return [float(v) for v in history[-1][2].reshape(-1)]


def run_bare(grid, stacked: bool, config: dict[str, dict]) -> None:
    """The bare side: the grid's trainings, one seed or one configuration's seeds (`stacked`)
    at a time, with the sweep's settings (composed by the parent: no Hydra here); prints
    their val_loss as JSON."""
    depths, widths, n_seeds = grid
    data, model, trainer = (SimpleNamespace(**config[key]) for key in SETTINGS)
    torch.set_num_threads(trainer.num_threads)
    splits = make_splits(data.name, data.n_train, data.n_val, data.n_test, data.noise, data.seed)
    groups = [list(range(n_seeds))] if stacked else [[seed] for seed in range(n_seeds)]
    results = {}
    for depth, width, seeds in itertools.product(depths, widths, groups):
        val_losses = bare_training(depth, width, seeds, splits, data, model, trainer.max_epochs)
        results.update({f"{depth},{width},{s}": v for s, v in zip(seeds, val_losses)})
    print(json.dumps(results))


def _grid_overrides(grid) -> list[str]:
    depths, widths, n_seeds = grid
    return [
        f"model.depth={','.join(map(str, depths))}",
        f"model.width={','.join(map(str, widths))}",
        f"{SEED_KEY}=range({n_seeds})",
    ]


def _timed(cmd: list[str], what: str | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of `cmd`; its failure ends the benchmark, naming `what`."""
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"benchmark: {what or ' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def _sweep(overrides: list[str], sweep_dir: Path) -> float:
    """Wall seconds of one multirun, start-up and report included."""
    cmd = [sys.executable, "-m", "src.train", "-m", *overrides, f"hydra.sweep.dir={sweep_dir}"]
    return _timed(cmd)[0]


def _bare(grid, config: dict[str, dict], stacked: bool = False) -> tuple[float, dict[str, float]]:
    bare = json.dumps({"grid": grid, **config})
    seconds, out = _timed(
        [sys.executable, "-m", "src.benchmark", "--bare", bare] + ["--stacked"] * stacked
    )
    return seconds, json.loads(out)


def _sweep_val_losses(sweep_dir: Path) -> dict[str, float]:
    results = {}
    for path in sweep_files(sweep_dir):
        metrics = read_metrics(path.parent)  # a diverged run's null read back as NaN
        m = metrics["config"]
        results[f"{m['model']['depth']},{m['model']['width']},{m[SEED_KEY]}"] = metrics["val_loss"]
    return results


def _peak_mb() -> float:
    """The largest resident size of any process this one has run and waited for so far."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def _same_trainings(bare: dict[str, float], sweep: dict[str, float]) -> str:
    if bare.keys() != sweep.keys():
        return f"NO, the sweep finished {len(sweep)} of {len(bare)} trainings"

    def worst(keys) -> str:
        keys = list(keys)
        return f"{max(abs(bare[k] - sweep[k]) for k in keys):.1e}" if keys else "-"

    stable = [k for k in bare if int(k.split(",")[0]) <= STABLE_DEPTH]
    chaotic = [k for k in bare if k not in stable]
    return f"{worst(stable)} at depth <= {STABLE_DEPTH}, {worst(chaotic)} deeper (chaotic)"


def compare(grid, extra: list[str], tmp: Path) -> float:
    """Time the grid as a sweep and as the two bare loops, and print them; return the sweep's
    seconds. The stacked bare loop is what stacking alone gives, with no framework at all."""
    overrides = _grid_overrides(grid) + extra
    depths, widths, seeds = grid
    n = len(depths) * len(widths) * seeds
    print(f"grid: {' '.join(overrides)} ({n} trainings), each side in turn:")
    sweep_s = _sweep(overrides, tmp / "grid")
    peak_mb = _peak_mb()  # before the bare process runs: the sweep's processes only
    sweep = _sweep_val_losses(tmp / "grid")
    config = settings(extra)  # the sweep's data, model and trainer, for both bare loops
    bare_s, bare = _bare(grid, config)
    stacked_s, stacked = _bare(grid, config, stacked=True)
    print(f"  python -m src.train -m                  : {sweep_s:7.1f} s")
    print(f"  bare PyTorch process, one seed at a time: {bare_s:7.1f} s  ({bare_s / n:.2f} s/run)")
    print(f"  ratio                                   : {sweep_s / bare_s:7.2f} x")
    print(f"  bare PyTorch process, seeds stacked     : {stacked_s:7.1f} s  (one process)")
    print(f"  ratio to it                             : {sweep_s / stacked_s:7.2f} x")
    print(f"  max |val_loss sweep - bare|             : {_same_trainings(bare, sweep)}")
    print(f"  max |val_loss sweep - bare stacked|     : {_same_trainings(stacked, sweep)}")
    print(f"  peak memory, largest process of the sweep: {peak_mb:.0f} MB")
    return sweep_s


def fixed_cost(extra: list[str], tmp: Path) -> None:
    """A one-job, one-epoch sweep, whole and without its parts, and the imports it pays for."""
    one = ["trainer.max_epochs=1", *extra]
    runs = {
        "one-job, one-epoch sweep": one,
        "  without wandb (logger=none)": [*one, "logger=none"],
        "  without the report": [*one, "~hydra.callbacks.report"],
        "  in one process (hydra/launcher=basic)": [*one, "hydra/launcher=basic"],
    }
    python, train = [sys.executable, "-c"], [sys.executable, "-m", "src.train"]
    imports = {
        "python and Hydra: --cfg job, no torch": [*train, "--cfg", "job"],
        "python, import torch": [*python, "import torch"],
        "python, import pytorch_lightning (+torch)": [*python, "import pytorch_lightning"],
        "python, import wandb": [*python, "import wandb"],
    }
    print("fixed cost of a sweep (each line one fresh run):")
    for i, (what, overrides) in enumerate(runs.items()):
        print(f"  {what:<42}: {_sweep(overrides, tmp / f'one{i}'):5.1f} s")
    for what, cmd in imports.items():
        print(f"  {what:<42}: {_timed(cmd)[0]:5.1f} s")


BOOKKEPT = (42, 1_000, 10_000)  # grid sizes whose bookkeeping is measured
BOOKKEEPING_BUDGET_MS = 50  # a job's bookkeeping: the sweep's time per job, all workers busy
TINY = ["logger=none", "trainer.max_epochs=1", "data.n_train=16", "data.n_val=16",
        "data.n_test=16"]  # fmt: skip


def instant_training(cfg, seeds, out_dirs, group=None, callbacks=None, wandb_places=None):
    """The stand-in for src.run.training.train_stack (same arguments): each seed's model.pt
    (untrained) and metrics.json (made-up losses, one epoch) written in no time."""
    from omegaconf import OmegaConf

    from src.run.training import member_config, run_metrics

    config = OmegaConf.to_container(cfg, resolve=True)
    hparams = {**config["model"], "in_features": 2}
    results = {}
    for seed, out in out_dirs.items():
        net = mlp_from_hparams(hparams)
        depth, width = hparams["depth"], hparams["width"]
        loss = 0.7 / (1 + depth + width / 50) + 0.01 * seed
        epoch = {"epoch": 0, "train_loss": loss * 1.1, "train_accuracy": 0.5, "val_loss": loss,
                 "val_accuracy": 1 - loss, **{f"grad_norm/layer_{i}": 10.0 ** (i - depth)
                                              for i in range(depth + 1)}}  # fmt: skip
        metrics = {
            **run_metrics([epoch], {"test_loss": loss, "test_accuracy": 1 - loss}, "ok"),
            "n_params": count_parameters(net),
            "seconds": 0.0,
            "stacked_with": seeds,
            "history": [epoch],
            "config": member_config(config, seed, out),
        }
        out.mkdir(parents=True, exist_ok=True)
        torch.save({"hparams": hparams, "state_dict": net.state_dict()}, out / "model.pt")
        write_json_atomic(out / METRICS_FILE, metrics)
        results[seed] = metrics
    return results


def sweep_without_training() -> None:
    """`python -m src.train -m ...` (this process's arguments), each job's training replaced by
    instant_training; the joblib workers import this module to run the task, so theirs too."""
    import hydra

    from src.run.files import register_resolvers

    register_resolvers()  # as src.train does
    app = hydra.main(version_base="1.3", config_path=str(CONF), config_name="train")
    app(job_without_training)()


def job_without_training(cfg):
    """src.train.sweep_job, its training replaced by instant_training."""
    import src.train

    src.train.train_stack = instant_training
    return src.train.sweep_job(cfg)


def _wait_for_first_job(process: subprocess.Popen, sweep_dir: Path, start: float, log: Path):
    """Seconds from `start` to the first job's start (its .hydra/ written)."""
    while not any(sweep_dir.glob(f"*/{SEED_KEY}=*/.hydra/overrides.yaml")):
        if process.poll() is not None:
            error = log.read_text()[-2000:]
            sys.exit(f"benchmark: the sweep into {sweep_dir} ended before its first job:\n{error}")
        time.sleep(0.01)
    return time.perf_counter() - start


def _report_in_process(sweep_dir: Path) -> tuple[float, float]:
    """Seconds and peak memory (MB) of `python -m src.report` on the sweep, its own process."""
    code = (
        "import resource, sys; from src.report.grid import main; rc = main([sys.argv[1]]); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024); sys.exit(rc)"
    )
    cmd = [sys.executable, "-c", code, str(sweep_dir)]
    seconds, out = _timed(cmd, f"the report of {sweep_dir}")
    return seconds, float(out.split()[-1])


def planning(tmp: Path, sizes=BOOKKEPT) -> None:
    """Grids of instant_training jobs, joblib on every core: the time to the first job's start
    (planning), between two jobs' records (the sweep's bookkeeping; times the workers: a job's
    cost to one worker), of results.csv and the report, and the peak memory of each."""
    from src.report.results import collect, write_results

    workers = os.cpu_count() or 1
    code = "from src.benchmark import sweep_without_training; sweep_without_training()"
    print(f"a sweep's own cost, trainings replaced by a no-op ({workers} workers):", flush=True)
    for n in sizes:
        sweep_dir = tmp / f"bookkept{n}"
        # n configurations, one seed each: the design card's for 42, else depths x 200 widths
        configs = [f"model.depth=range({n // 200})", "model.width=range(1,201)"]
        if n == 42:
            configs = _grid_overrides((*CARD[:2], 1))[:2]
        grid = [*configs, *TINY, "~hydra.callbacks.report"]
        cmd = [sys.executable, "-c", code, "-m", *grid, f"hydra.sweep.dir={sweep_dir}"]
        log = tmp / f"bookkept{n}.log"
        with log.open("w") as errors:  # a file: a pipe left unread would stall a long sweep
            start = time.perf_counter()
            process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors)
            plan = _wait_for_first_job(process, sweep_dir, start, log)
            process.wait()
            total = time.perf_counter() - start
        if process.returncode != 0:
            sys.exit(f"benchmark: {' '.join(cmd)} failed:\n{log.read_text()[-2000:]}")
        sweep_peak = _peak_mb()
        # The rate at which the jobs' records came in, first to last: the workers' start-up
        # (torch imported) and the sweep's end are fixed costs, not a job's.
        records = list(sweep_dir.glob(f"*/{SEED_KEY}=*/{METRICS_FILE}"))
        failed = [p.parent for p in records if read_metrics(p.parent)["status"] != "ok"]
        if len(records) < n or failed:
            bad = n - len(records) + len(failed)
            sys.exit(f"benchmark: {bad} of {n} no-op jobs did not end ok (see {sweep_dir})")
        finished = sorted(p.stat().st_mtime for p in records)
        per_job = (finished[-1] - finished[0]) / (len(finished) - 1) * 1000
        start = time.perf_counter()
        write_results(sweep_dir, collect(sweep_dir))
        csv_s = time.perf_counter() - start
        report_s, report_mb = _report_in_process(sweep_dir)
        verdict = "within" if per_job <= BOOKKEEPING_BUDGET_MS else "OVER"
        print(f"  {n:>6} configurations: {total:6.1f} s in all; planning {plan:5.1f} s; "
              f"bookkeeping {per_job:5.1f} ms a job ({verdict} {BOOKKEEPING_BUDGET_MS}; "
              f"{per_job * workers:.0f} ms of a worker's time); results.csv {csv_s:5.1f} s; report "
              f"{report_s:5.1f} s; peak memory: sweep {sweep_peak:.0f} MB, report "
              f"{report_mb:.0f} MB", flush=True)  # fmt: skip


def slurm(grid, extra: list[str], tmp: Path, per_job: bool) -> None:
    """The grid with joblib on this machine's cores, then on the SLURM cluster with a Dask
    worker (a batch job) per CPU; one-job sweeps of each give the fixed cost, so what is left
    over is the cluster's cost per job."""
    listed = subprocess.run(["sinfo", "-h", "-o", "%C"], capture_output=True, text=True)
    if listed.returncode != 0:
        sys.exit("benchmark: --slurm needs a SLURM cluster (bash tests/slurm_cluster.sh start)")
    cpus = int(listed.stdout.split("/")[-1])  # allocated/idle/other/total
    overrides = _grid_overrides(grid) + extra
    depths, widths, seeds = grid
    jobs = len(depths) * len(widths)
    pool = ["hydra/launcher=slurm", f"hydra.launcher.workers={cpus}", "hydra.launcher.interface=lo"]
    one = ["model.depth=1", "model.width=3", f"{SEED_KEY}=0", "trainer.max_epochs=1", *extra]
    print(f"grid: {' '.join(overrides)} ({jobs} jobs of {seeds} seeds); cluster: {cpus} CPUs")
    joblib_s = _sweep(overrides, tmp / "joblib")
    print(f"  joblib, {cpus} workers on this machine      : {joblib_s:7.1f} s")
    slurm_s = _sweep(overrides + pool, tmp / "slurm")
    print(f"  SLURM, {cpus} Dask workers (hydra/launcher=slurm): {slurm_s:7.1f} s")
    print(f"  ratio                                    : {slurm_s / joblib_s:7.2f} x")
    joblib_one, slurm_one = _sweep(one, tmp / "one-joblib"), _sweep(one + pool, tmp / "one-slurm")
    fixed = slurm_one - joblib_one
    print(f"  one-job sweep, joblib / SLURM            : {joblib_one:.1f} / {slurm_one:.1f} s")
    print(f"  the cluster's fixed cost (scheduler, submit, worker start-up): {fixed:.1f} s")
    rest = (slurm_s - joblib_s - fixed) * cpus / jobs
    print(f"  what is left, per job and worker          : {rest:.2f} s")
    # What the Dask workers used: batch jobs, a worker's peak memory, the first result.
    usage_file = tmp / "slurm" / ".cluster" / "usage.json"
    usage = json.loads(usage_file.read_text()) if usage_file.exists() else {}
    print(f"  worker batch jobs / a worker's peak memory: {usage.get('worker_jobs')} / "
          f"{usage.get('worker_peak_mb')} MB")  # fmt: skip
    print(f"  the first result, from the cluster's start: {usage.get('first_result_s', 0):.1f} s")
    same = _sweep_val_losses(tmp / "joblib") == _sweep_val_losses(tmp / "slurm")
    print(f"  val_loss of every run, SLURM = joblib     : {'yes' if same else 'NO'}")
    if per_job:
        per_task = ["hydra/launcher=submitit_slurm", "hydra.launcher.cpus_per_task=1",
                    "hydra.launcher.mem_gb=2"]  # fmt: skip
        each_s = _sweep(overrides + per_task, tmp / "per-job")
        print(f"  Hydra's submitit_slurm, a task per job   : {each_s:7.1f} s "
              f"({each_s / joblib_s:.2f}x joblib)")  # fmt: skip


def parse_args(argv: list[str] | None = None):
    """The command line; a wrong argument (unknown, not an override, a key the benchmark sweeps
    itself) ends it in one line, exit status 2."""
    parser = ArgumentParser(
        prog="python -m src.benchmark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--card", action="store_true", help="the design-card grid, and 30 seeds")
    parser.add_argument(
        "--planning",
        action="store_true",
        help="a sweep's own cost (planning, bookkeeping, results.csv, report) at 42, 1,000 and "
        "10,000 configurations, each training replaced by a no-op",
    )
    parser.add_argument(
        "--slurm", action="store_true", help="the grid on SLURM against joblib (--card: 252 runs)"
    )
    parser.add_argument(
        "--per-job-tasks", action="store_true", help="with --slurm: also a SLURM task per job"
    )
    parser.add_argument("--bare", metavar="SPEC", help="run only a bare side (internal)")
    parser.add_argument("--stacked", action="store_true", help="with --bare: seeds stacked")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. model.norm=layer")
    args = parser.parse_args(argv)
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in args.overrides:
        try:
            parsed = OverridesParser.create().parse_override(override)
        except Exception:  # Hydra's message spans lines; say which argument, in one
            parser.error(f"{override!r} is not a Hydra override (key=value)")
        if parsed.key_or_group in GRID_KEYS:
            parser.error(f"{override!r}: the benchmark sweeps {', '.join(GRID_KEYS)} itself")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # each figure as soon as it is measured
    if args.bare:
        spec = json.loads(args.bare)
        return run_bare(spec.pop("grid"), args.stacked, spec)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.planning:
            return planning(tmp)
        if args.slurm:
            return slurm(CARD if args.card else SMALL, args.overrides, tmp, args.per_job_tasks)
        if not args.card:
            compare(SMALL, args.overrides, tmp)
            fixed_cost(args.overrides, tmp)
            return
        sweep_s = compare(CARD, args.overrides, tmp)
        depths, widths, _ = CARD
        many = _sweep(_grid_overrides((depths, widths, 30)) + args.overrides, tmp / "seeds30")
        print(
            f"the same grid with seed=range(30): {many:.1f} s ({many / sweep_s:.2f}x the 6 seeds)"
        )
        print(f"peak memory, largest process of the sweeps: {_peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
