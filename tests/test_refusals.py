"""What cannot run is refused before any training, naming the key: an accelerator this machine
lacks, more threads or CPU devices than its cores, a run too big for its memory or too deep to
build, a wandb name wandb would reject, a key the code does not know. Each refusal is tried
through `train`, which must raise before it writes anything (the command line's one line and
exit status 2 are tests/test_single_run.py's)."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from src.errors import ConfigError
from src.run import validation
from src.run.training import train
from src.run.validation import LOGGER_KEYS, SIZE_DEFAULTS, memory_needed, run_size, validate

from .conftest import CONF, ROOT

GB = 10**9


def refused(make_cfg, tmp_path, *overrides: str, tiny: bool = True) -> ConfigError:
    """The refusal of a run with `overrides`, after checking nothing was trained or written."""
    cfg = make_cfg(*overrides, tiny=tiny)
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert not (tmp_path / "run").exists()  # no folder, no metrics.json, no model.pt
    assert "\n" not in str(error.value)  # one line
    return error.value


# -- accelerators ----------------------------------------------------------------------------


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("accelerator", ["gpu", "cuda", "mps"])
def test_an_accelerator_this_machine_lacks_is_refused(make_cfg, tmp_path, no_gpu, accelerator):
    error = refused(make_cfg, tmp_path, f"trainer.accelerator={accelerator}")
    assert error.key == "trainer.accelerator"
    device = "no MPS device" if accelerator == "mps" else "no CUDA GPU"
    assert str(error) == (
        f"trainer.accelerator='{accelerator}' is not allowed: one this machine has: cpu, auto "
        f"(torch finds {device})"
    )


def test_an_accelerator_that_is_there_passes_and_its_devices_are_counted(make_cfg, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    validate(make_cfg("trainer.accelerator=gpu", "trainer.devices=2"))
    with pytest.raises(ConfigError) as error:
        validate(make_cfg("trainer.accelerator=cuda", "trainer.devices=3"))
    assert str(error.value) == "trainer.devices=3 is not allowed: an integer from 1 to 2 (its GPUs)"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    validate(make_cfg("trainer.accelerator=mps"))
    for accelerator in ("cpu", "auto"):  # always there
        validate(make_cfg(f"trainer.accelerator={accelerator}"))


def test_a_real_gpu_is_refused_or_accepted_as_torch_finds_it(make_cfg):
    cfg = make_cfg("trainer.accelerator=gpu")
    if torch.cuda.is_available():
        validate(cfg)
    else:
        with pytest.raises(ConfigError, match="torch finds no CUDA GPU"):
            validate(cfg)


# -- threads ---------------------------------------------------------------------------------


def test_more_threads_than_cores_are_refused(make_cfg, tmp_path, monkeypatch):
    cores = os.cpu_count() or 1
    validate(make_cfg(f"trainer.num_threads={cores}"))
    error = refused(make_cfg, tmp_path, f"trainer.num_threads={cores + 1}")
    assert str(error) == (
        f"trainer.num_threads={cores + 1} is not allowed: an integer from 1 to {cores} (its cores)"
    )
    monkeypatch.setattr(validation.os, "cpu_count", lambda: 4)
    assert "from 1 to 4" in str(refused(make_cfg, tmp_path, "trainer.num_threads=100000"))


def test_more_cpu_devices_than_cores_are_refused(make_cfg, tmp_path, no_gpu):
    cores = os.cpu_count() or 1
    validate(make_cfg(f"trainer.devices={cores}"))
    for accelerator in ("cpu", "auto"):  # auto, without a GPU, is the CPU
        error = refused(
            make_cfg, tmp_path, f"trainer.accelerator={accelerator}", f"trainer.devices={cores + 1}"
        )
        assert str(error) == (
            f"trainer.devices={cores + 1} is not allowed: an integer from 1 to {cores} "
            "(its cores, on the CPU)"
        )


# -- memory and depth ------------------------------------------------------------------------


@pytest.fixture
def sixteen_gb(monkeypatch):
    """This machine with 16 GB free, whatever it has."""
    monkeypatch.setattr(validation, "memory_available", lambda: 16 * GB)


@pytest.mark.parametrize(
    "override, key, needs",
    [
        ("model.width=100000", "model.width", "241.1 GB"),  # 10**10 weights, 6 copies
        ("model.width=10000000", "model.width", "2.4 PB"),
        ("data.n_train=1000000000", "data.n_train", "48.5 GB"),
    ],
)
def test_a_run_too_big_for_the_memory_is_refused_with_both_numbers(
    make_cfg, tmp_path, sixteen_gb, override, key, needs
):
    error = refused(make_cfg, tmp_path, override, tiny=False)
    assert error.key == key
    message = str(error)
    assert message.startswith(f"{key}=")
    assert f"is not allowed: a run that fits in memory: this one needs about {needs} (" in message
    assert message.endswith(", 16.0 GB available")


def test_the_refusal_names_the_setting_that_costs_the_most(make_cfg):
    size = run_size(make_cfg(tiny=False))
    assert validation._culprit(size | {"seeds": 10**6}) == "seeds"  # a million default nets
    assert validation._culprit(size | {"seeds": 6, "model.width": 10**5}) == "model.width"
    assert validation._culprit(size | {"model.depth": 1000, "model.width": 1000}) == "model.width"
    assert validation._culprit(size | {"model.depth": 1000, "seeds": 2}) == "model.depth"
    assert validation._culprit(size | {"data.n_test": 10**9}) == "data.n_test"


def test_the_memory_refusal_uses_what_this_machine_has_free(make_cfg, tmp_path):
    available = validation.memory_available()
    assert 0 < available < 2**60
    total = Path("/proc/meminfo").read_text().split()[1]  # MemTotal, kB
    assert available <= int(total) * 1024
    error = refused(make_cfg, tmp_path, "model.width=10000000")  # 2.4 PB: no machine has it
    assert error.key == "model.width" and "available" in str(error)


def test_ordinary_runs_fit(make_cfg, sixteen_gb):
    validate(make_cfg(tiny=False))  # the defaults
    for depth, width in ((20, 20), (1000, 10), (10, 1000)):  # the report's grid, and beyond
        validate(make_cfg(f"model.depth={depth}", f"model.width={width}", "seeds=[0,1,2,3,4,5]"))
    needed = sum(memory_needed(run_size(make_cfg(tiny=False))).values())
    assert needed < 1 * GB


def test_the_estimate_counts_every_member_and_the_optimizer(make_cfg):
    def parts(*overrides):
        return memory_needed(run_size(make_cfg("model.width=1000", *overrides, tiny=False)))

    one, six = parts(), parts("seeds=[0,1,2,3,4,5]")
    weights = "parameters, gradients and optimizer state"
    assert six[weights] == 6 * one[weights] and six["activations"] == 6 * one["activations"]
    n_params = 2 * 1000 + 1000 + 1000 * 1000 + 1000 + 1000 + 1  # depth 2
    assert one[weights] == 4 * n_params * 6  # float32; weights, gradients, Adam, building
    assert parts("model.optimizer=sgd")[weights] == 4 * n_params * 4
    points = parts("data.n_train=10000000")["data"]
    assert points >= 12 * (10**7 + 1000)  # every point's 2 features and label, float32


def test_a_net_too_deep_to_build_is_refused_with_the_bound(make_cfg, tmp_path):
    error = refused(make_cfg, tmp_path, "model.depth=100000")
    assert str(error).startswith(
        "model.depth=100000 is not allowed: an integer from 0 to 1000 (each layer is a module"
    )
    validate(make_cfg("model.depth=1000"))


# -- wandb names -----------------------------------------------------------------------------

WANDB_REFUSALS = [
    ("logger.project=team/deep", "logger.project", "it has /"),
    ("logger.project='a:b'", "logger.project", "it has :"),
    ("logger.project='what?'", "logger.project", "it has ?"),
    ("logger.project='100%'", "logger.project", "it has %"),
    ("logger.project='no#1'", "logger.project", "it has #"),
    ("logger.project=" + "p" * 129, "logger.project", "a name of 1 to 128 characters"),
    ("logger.project=''", "logger.project", "a name of 1 to 128 characters"),
    ("logger.project=42", "logger.project", "a name of 1 to 128 characters"),
    ("logger.entity=me/team", "logger.entity", "without / or :"),
    ("logger.entity=''", "logger.entity", "without / or :"),
    ("logger.job_type=''", "logger.job_type", "a name"),
    ("logger.job_type=[a,b]", "logger.job_type", "a name"),
    ("logger.tags=[ok,'']", "logger.tags", "tags of 1 to 64 characters"),
    ("logger.tags=[" + "t" * 65 + "]", "logger.tags", "tags of 1 to 64 characters"),
    ("logger.tags=baseline", "logger.tags", "a list of tags"),
]


@pytest.mark.parametrize("override, key, allowed", WANDB_REFUSALS)
def test_a_name_wandb_would_reject_is_refused_before_the_run(
    make_cfg, tmp_path, override, key, allowed
):
    error = refused(make_cfg, tmp_path, "logger=wandb", override)
    assert error.key == key and allowed in str(error)
    assert not list(tmp_path.glob("**/wandb"))  # no wandb run was started


def test_names_wandb_takes_pass(make_cfg):
    validate(make_cfg("logger=wandb", "logger.project=" + "p" * 128, "logger.entity=my-team"))
    validate(make_cfg("logger=wandb", "logger.tags=[a," + "t" * 64 + "]", "logger.job_type=x"))


def test_the_project_check_is_wandbs_own(make_cfg):
    """What wandb 0.31 refuses, it refuses here too; what it takes passes."""
    from wandb.errors import UsageError
    from wandb.sdk.wandb_settings import Settings

    for project in ("deep-vs-wide", "a/b", "a:b", "a#b", "a?b", "a%b", "a\\b", "p" * 129):
        try:
            Settings(project=project)
            by_wandb = None
        except (UsageError, ValueError) as error:
            by_wandb = error
        try:
            validation.check_logger(
                OmegaConf.merge(make_cfg("logger=wandb").logger, {"project": project})
            )
            here = None
        except ConfigError as error:
            here = error
        assert (by_wandb is None) == (here is None), project


# -- keys the code does not know -------------------------------------------------------------

MODEL_KEYS = "depth, width, activation, lr, optimizer, residual, norm, init"


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+model.foo=1"], f"model.foo=1 is not allowed: a key of model: {MODEL_KEYS}"),
        (
            ["+data.size=3"],
            "data.size=3 is not allowed: a key of data: "
            "name, n_train, n_val, n_test, noise, batch_size, seed",
        ),
        (
            ["+trainer.gpus=1"],
            "trainer.gpus=1 is not allowed: a key of trainer: "
            "max_epochs, accelerator, devices, num_threads, progress_bar",
        ),
        (
            ["logger=wandb", "+logger.name=x"],
            "logger.name='x' is not allowed: a key of logger=wandb: kind, project, entity, mode, "
            "job_type, tags, watch, watch_log, watch_log_freq",
        ),
        (["+logger.project=x"], "logger.project='x' is not allowed: a key of logger=none: kind"),
        (
            ["+epochs=3"],
            "epochs=3 is not allowed: a key of the config: "
            "data, logger, model, output_dir, seed, seeds, trainer",
        ),
        (["~model.norm"], "model.norm=None is not allowed: a value: the key cannot be removed"),
    ],
)
def test_a_key_the_code_does_not_know_is_refused_naming_the_known_ones(
    make_cfg, tmp_path, overrides, message
):
    assert str(refused(make_cfg, tmp_path, *overrides)) == message


def test_the_known_keys_are_the_codes_and_the_configs():
    from src.run.data import GeneratedDataModule
    from src.run.model import MLPClassifier

    def arguments(cls, *left_out):
        return [p for p in inspect.signature(cls.__init__).parameters if p not in left_out]

    model = arguments(MLPClassifier, "self", "in_features", "seeds")
    assert list(validation.KNOWN_KEYS["model"]) == model
    assert list(validation.KNOWN_KEYS["data"]) == arguments(
        GeneratedDataModule, "self", "shuffle_seeds"
    )
    for group, files in (("model", ["mlp"]), ("data", ["xor"]), ("trainer", ["default"])):
        for name in files:
            keys = OmegaConf.load(CONF / group / f"{name}.yaml").keys()
            assert set(keys) - {"defaults"} == set(validation.KNOWN_KEYS[group]), group
    for kind, keys in LOGGER_KEYS.items():
        assert set(OmegaConf.load(CONF / "logger" / f"{kind}.yaml").keys()) == set(keys), kind


def test_the_size_defaults_are_the_configs(make_cfg):
    size = run_size(make_cfg(tiny=False))
    assert {key: size[key] for key in SIZE_DEFAULTS} == SIZE_DEFAULTS


def test_a_sweeps_main_process_can_run_the_name_and_key_checks_without_torch():
    code = (
        "import sys; import src.run.validation as c; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "from omegaconf import OmegaConf; "
        "c.check_logger(OmegaConf.create({'kind': 'csv'})); print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
