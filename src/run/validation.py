"""What a run is refused for before it trains: `validate(cfg)`, each refusal one ConfigError.

Beyond each value's own check (src/run/schema.py, src/run/loggers.py): an unknown key, what this
machine lacks (accelerator, cores, memory), and wandb online without a login or server
(`check_wandb_online`). Torch and wandb are imported only by the checks that need them.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from src.errors import ConfigError, require_choice, require_seed
from src.memory import format_bytes, memory_available
from src.run.loggers import KINDS, LOGGER_SCHEMAS, wandb_mode
from src.run.schema import (
    GENERATORS,
    GROUPS,
    OPTIMIZERS,
    SEED_KEY,
    STACK_KEY,
    defaults,
    group_settings,
    settings,
)

# The keys the code reads: one added with +key=value would be a TypeError deep in training, or
# silently ignored. Optimizers' and data sets' own settings come on top.
KNOWN_KEYS: dict[str, tuple[str, ...]] = {
    "": tuple(sorted([*GROUPS, "logger", "output_dir", SEED_KEY, STACK_KEY])),
    **{group: tuple(settings(schema)) for group, schema in GROUPS.items()},
}
LOGGER_KEYS = {kind: tuple(settings(schema)) for kind, schema in LOGGER_SCHEMAS.items()}


def validate(cfg: DictConfig) -> None:
    """Refuse any value training cannot use, naming the key (raises ConfigError)."""
    check_keys(cfg)
    check_values(cfg)
    check_logger(cfg.logger)
    check_machine(cfg)


def check_keys(cfg: DictConfig) -> None:
    """Refuse a key the code does not read (added with +key=value), and a removed one."""
    logger = cfg.get("logger")
    if isinstance(logger, DictConfig):
        require_choice("logger.kind", logger.get("kind"), KINDS)
    kind = logger.kind if isinstance(logger, DictConfig) else None
    data = cfg.get("data")
    data_set = data.get("name") if isinstance(data, DictConfig) else None
    groups = {**KNOWN_KEYS, **group_settings(data_set), "logger": LOGGER_KEYS.get(kind, ())}
    for group, known in groups.items():
        node = cfg if group == "" else cfg.get(group)
        if group and not isinstance(node, DictConfig):
            raise ConfigError(group, node, f"a config group's settings ({', '.join(known)})")
        prefix = f"{group}." if group else ""
        for key in node:
            if key not in known and not (group == "" and key == "hydra"):  # Hydra's own part
                where = f"a key of {group}" if group else "a key of the config"
                if group == "logger":
                    where += f"={node.get('kind')}"
                raise ConfigError(f"{prefix}{key}", node[key], f"{where}: {', '.join(known)}")
        for key in known:
            if key not in node:
                generator = GENERATORS.get(data_set) if group == "data" else None
                own = generator.settings if generator else {}
                if key in own:  # data.name=<set> on another set's option: its settings lack
                    allowed = (
                        f"chosen as data={data_set}, which brings its settings ({', '.join(own)})"
                    )
                    raise ConfigError("data.name", data_set, allowed)
                raise ConfigError(f"{prefix}{key}", None, "a value: the key cannot be removed")


def check_values(cfg: DictConfig) -> None:
    """Refuse each value its schema field's check refuses, and combinations that cannot run."""
    require_seed(SEED_KEY, cfg[SEED_KEY])
    seeds = cfg.get(STACK_KEY)
    if seeds is not None:
        if not isinstance(seeds, ListConfig) or not seeds or len(set(seeds)) < len(seeds):
            raise ConfigError(STACK_KEY, seeds, "null, or a list of distinct integers")
        for seed in seeds:
            require_seed(STACK_KEY, seed)
        if len(seeds) > 1 and cfg.logger.get("watch"):
            raise ConfigError(
                "logger.watch",
                True,
                "false when seeds are stacked (its histograms would mix the seeds); "
                "add hydra.sweeper.stack_seeds=false",
            )
    for group, fields in group_settings(cfg.data.name).items():
        _check_fields(group, cfg[group], fields)
    m, d = cfg.model, cfg.data
    if m.norm == "batch" and m.depth > 0 and (d.n_train % d.batch_size or d.batch_size) == 1:
        raise ConfigError(  # BatchNorm cannot normalize a batch of one sample
            "data.batch_size",
            d.batch_size,
            f"a size that leaves no training batch of 1 sample (data.n_train={d.n_train}) "
            "with model.norm=batch",
        )


def _check_fields(group: str, node: DictConfig, fields: dict[str, Any]) -> None:
    for key, spec in fields.items():
        if spec.metadata.get("check"):
            spec.metadata["check"](f"{group}.{key}", node[key])


def check_logger(cfg: DictConfig) -> None:
    """Refuse an unknown logger kind, and a setting its kind's schema (src/run/loggers.py)
    refuses."""
    require_choice("logger.kind", cfg.kind, KINDS)
    _check_fields("logger", cfg, settings(LOGGER_SCHEMAS[cfg.kind]))


# How long the wandb server has to answer before an online run is refused: wandb itself
# retries for about 96 s per run, then fails it.
WANDB_ANSWER_SECONDS = 5


def check_wandb_online(cfg: DictConfig, where: Path) -> None:
    """Refuse wandb online (logger.mode, or WANDB_MODE) without an API key or a server that
    answers, naming the ways out; `where`: the folder whose wandb/ `wandb sync` would upload."""
    if cfg.get("kind") != "wandb" or wandb_mode(cfg) != "online":
        return
    import wandb
    from wandb.sdk import wandb_setup

    key = "WANDB_MODE" if os.environ.get("WANDB_MODE") == "online" else "logger.mode"
    ways_out = (
        f"run `wandb login`, or set {key}=offline and upload later with "
        f"`wandb sync {Path(where) / 'wandb'}`"
    )
    # This process's wandb settings, without starting wandb's service (wandb.setup would,
    # and its workers would then share it). Silent: no look-up of the user on the server.
    settings = wandb_setup.singleton().settings
    settings.mode, settings.silent = "online", True
    with contextlib.redirect_stderr(io.StringIO()):  # "Loaded credentials for ...": not news
        logged_in = wandb.login(prompt=False, verify=False)  # finds a key, sends nothing
    if not logged_in:
        raise ConfigError(key, "online", f"a wandb login (no API key is set up): {ways_out}")
    if not answers(settings.base_url, WANDB_ANSWER_SECONDS):
        raise ConfigError(
            key,
            "online",
            f"a wandb server that answers ({settings.base_url} did not answer within "
            f"{WANDB_ANSWER_SECONDS} s): {ways_out}",
        )


def answers(url: str, timeout: float) -> bool:
    """Whether a server answers at `url` within `timeout` seconds (an HTTP error, or a TLS
    handshake this Python cannot verify, is an answer too)."""
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return True
    except urllib.error.URLError as error:
        return isinstance(error.reason, ssl.SSLError)
    except (OSError, ValueError):  # a timeout while reading, a URL urllib cannot open
        return False
    return True


def check_machine(cfg: DictConfig) -> None:
    """Refuse an accelerator this machine lacks, more threads than cores, too little memory."""
    t = cfg.trainer
    check_accelerator(t.accelerator, t.devices)
    cores = os.cpu_count() or 1
    if t.num_threads > cores:
        raise ConfigError(
            "trainer.num_threads", t.num_threads, f"an integer from 1 to {cores} (its cores)"
        )
    check_memory(cfg)


def check_accelerator(accelerator: str, devices: int) -> None:
    """Refuse a GPU (CUDA or MPS) torch does not find here, and more devices than GPUs, or on
    the CPU, cores."""
    import torch

    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    here = ["cpu", "auto"] + ["gpu", "cuda"] * cuda + ["mps"] * mps
    if accelerator not in here:
        found = "no CUDA GPU" if accelerator in ("gpu", "cuda") else "no MPS device"
        raise ConfigError(
            "trainer.accelerator",
            accelerator,
            f"one this machine has: {', '.join(here)} (torch finds {found})",
        )
    if accelerator in ("gpu", "cuda") and devices > torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError("trainer.devices", devices, f"an integer from 1 to {count} (its GPUs)")
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not (cuda or mps))
    cores = os.cpu_count() or 1
    if on_cpu and devices > cores:  # Lightning starts a process per CPU device
        raise ConfigError(
            "trainer.devices", devices, f"an integer from 1 to {cores} (its cores, on the CPU)"
        )


# -- memory ------------------------------------------------------------------------------------

FLOAT = 4  # bytes: every tensor is float32
# Measured (peak resident size of one-epoch runs, torch 2 on CPU) and rounded up: the estimate
# came within 0.8x to 1.5x of what the runs took. Bytes a point takes while drawn, and after.
DRAWING_BYTES, POINT_BYTES = 40, 12
# Bytes per member per training point in an epoch: its batch orders, logits, labels, the loss.
EPOCH_BYTES = 36
FRAMEWORK_BYTES = 500 * 10**6  # Lightning, a Trainer and a logger, beyond torch itself


# The settings a run's size grows with, as keys of `run_size`.
SIZE_KEYS = (
    "model.width",
    "model.depth",
    "data.n_train",
    "data.n_val",
    "data.n_test",
    "data.batch_size",
    STACK_KEY,
)


def run_size(cfg: DictConfig) -> dict[str, Any]:
    """What `memory_needed` reads of the config; STACK_KEY: the number of stacked members."""
    size = {key: OmegaConf.select(cfg, key) for key in SIZE_KEYS[:-1]}
    size[STACK_KEY] = len(cfg[STACK_KEY]) if cfg.get(STACK_KEY) is not None else 1
    m = cfg.model
    return size | {"norm": m.norm, "residual": m.residual, "optimizer": m.optimizer}


def memory_needed(size: dict[str, Any]) -> dict[str, int]:
    """About how many bytes a run of `size` (run_size's) takes at its peak, by part."""
    width, depth, members = size["model.width"], size["model.depth"], size[STACK_KEY]
    n_train, n_val, n_test = (size[f"data.n_{split}"] for split in ("train", "val", "test"))
    # One net's Linears, and a scale and shift per unit of each norm.
    sizes = [2] + [width] * depth + [1]
    linears = sum(a * b + b for a, b in itertools.pairwise(sizes))
    params = (linears + (2 * width * depth if size["norm"] != "none" else 0)) * members
    # Training holds weights, gradients and the optimizer's state (Adam's two moments, none for
    # SGD); building the stack (members, then their stack) leaves about two more copies behind
    # (measured: 5 to 6.4 copies with Adam, 3 to 4.5 with SGD).
    copies = 4 + OPTIMIZERS[size["optimizer"]].state_copies
    # What autograd keeps per hidden layer and sample for the backward pass: the activation's
    # output (also the next Linear's input), LayerNorm's input and output (BatchNorm1d keeps
    # one), a residual's sum; and the gradients flowing back, two layers' worth at a time.
    kept = 1 + {"none": 0, "layer": 2, "batch": 1}.get(size["norm"], 2) + bool(size["residual"])
    batch = min(size["data.batch_size"], n_train)
    train_step = batch * (width * (depth * kept + 2) + 3)
    evaluation = max(n_val, n_test) * (3 * width + 3)  # one pass, nothing kept
    points = n_train + n_val + n_test
    data = max(DRAWING_BYTES * points, POINT_BYTES * points + EPOCH_BYTES * members * n_train)
    return {
        "parameters, gradients and optimizer state": FLOAT * params * copies,
        "activations": FLOAT * members * max(train_step, evaluation),
        "data": data,
        "Lightning": FRAMEWORK_BYTES,
    }


def check_memory(cfg: DictConfig) -> None:
    """Refuse a run that would not fit in the memory free now, naming the costliest setting."""
    size = run_size(cfg)
    parts = memory_needed(size)
    needed, available = sum(parts.values()), memory_available()
    if needed <= available:
        return
    key = _culprit(size)
    value = list(cfg[STACK_KEY]) if key == STACK_KEY else size[key]
    big = {name: b for name, b in parts.items() if b >= needed / 100}
    shares = ", ".join(f"{name} {format_bytes(b)}" for name, b in big.items())
    slurm = (
        " in this SLURM task (hydra.launcher.mem_gb)" if "SLURM_MEM_PER_NODE" in os.environ else ""
    )
    raise ConfigError(
        key,
        value,
        f"a run that fits in memory: this one needs about {format_bytes(needed)} ({shares}), "
        f"{format_bytes(available)} available{slurm}",
    )


# The default of each size setting (the schema's, one seed).
SIZE_DEFAULTS = {
    key: defaults(settings(GROUPS[key.split(".")[0]]))[key.split(".")[1]] for key in SIZE_KEYS[:-1]
} | {STACK_KEY: 1}


def _culprit(size: dict[str, Any]) -> str:
    """The size setting that costs the most: the one whose default would save the most."""
    needed = sum(memory_needed(size).values())
    saving = {
        key: needed - sum(memory_needed(size | {key: SIZE_DEFAULTS[key]}).values())
        for key in SIZE_KEYS
    }
    return max(saving, key=saving.get)
