"""Every value training cannot use is refused before training, naming the key."""

import subprocess
import sys
from pathlib import Path

import pytest

from src.errors import (
    INT64_MAX,
    SEED_MAX,
    ConfigError,
    require_float32,
    require_int,
    require_number,
    require_seed,
)
from src.folders import make_folder
from src.run.training import train, validate

ROOT = Path(__file__).resolve().parent.parent

BAD = [
    ("model.depth=-1", "model.depth"),
    ("model.depth=1.5", "model.depth"),
    ("model.width=0", "model.width"),
    ("model.activation=softsign", "model.activation"),
    ("model.optimizer=rmsprop", "model.optimizer"),
    ("model.lr=0", "model.lr"),
    ("model.lr=-0.1", "model.lr"),
    ("model.lr=fast", "model.lr"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.noise=-0.1", "data.noise"),
    ("data.n_train=0", "data.n_train"),
    ("data.n_val=0", "data.n_val"),
    ("data.n_test=0", "data.n_test"),
    ("data.name=blobs", "data.name"),
    ("trainer.max_epochs=0", "trainer.max_epochs"),
    ("trainer.num_threads=0", "trainer.num_threads"),
    ("trainer.accelerator=tpu9", "trainer.accelerator"),
    ("seed=abc", "seed"),
    ("seed=1.5", "seed"),
    ("seed=-1", "seed"),  # torch would read it as 2**64-1
    ("seed=4294967296", "seed"),  # 2**32
    ("seeds=[0,4294967296]", "seeds"),
    ("data.seed=99999999999999999999", "data.seed"),
    ("model.lr=1e39", "model.lr"),  # over float32's largest
    ("model.lr=1e-50", "model.lr"),  # 0 in float32
    ("data.noise=1e400", "data.noise"),  # inf
    ("data.batch_size=9223372036854775808", "data.batch_size"),  # 2**63
    ("trainer.max_epochs=9223372036854775808", "trainer.max_epochs"),
    ("logger=wandb", None),  # valid: the control case
]


@pytest.mark.parametrize("override, key", BAD)
def test_bad_values_are_refused_with_the_key(make_cfg, override, key):
    cfg = make_cfg(override)
    if key is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError) as error:
        validate(cfg)
    assert error.value.key == key
    assert str(error.value).startswith(f"{key}=")


def test_the_defaults_are_valid_and_seed_zero_is_a_seed(make_cfg):
    cfg = make_cfg("seed=0", tiny=False)
    validate(cfg)
    assert cfg.seed == 0


def test_refused_before_anything_is_written(make_cfg, tmp_path):
    with pytest.raises(ConfigError):
        train(make_cfg("model.width=0"))
    assert not (tmp_path / "run").exists()


def test_command_line_refusal_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "src.train", "model.depth=-1", f"hydra.run.dir={tmp_path}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: model.depth=-1 is not allowed: an integer >= 0"
    ]
    assert "Traceback" not in done.stdout + done.stderr


def test_the_ranges_are_said_in_the_refusal():
    cases = [
        (lambda: require_seed("seed", SEED_MAX + 1), "an integer from 0 to 2**32-1"),
        (lambda: require_int("n", 2**63, 1, INT64_MAX), "an integer from 1 to 2**63-1"),
        (lambda: require_int("n", 11, 1, 10), "an integer from 1 to 10"),
        (lambda: require_number("x", float("inf"), positive=True), "a finite number > 0"),
        (lambda: require_number("x", 10**400, minimum=0), "a finite number >= 0"),
        (lambda: require_number("x", float("nan")), "a finite number"),
        (
            lambda: require_float32("lr", 1e39, positive=True),
            "a number from 1.18e-38 to 3.4e+38 (float32, the model's dtype)",
        ),
        (
            lambda: require_float32("noise", -1e-3),
            "a number from 0 to 3.4e+38 (float32, the model's dtype)",
        ),
    ]
    for refuse, allowed in cases:
        with pytest.raises(ConfigError) as error:
            refuse()
        assert error.value.allowed == allowed
    require_seed("seed", SEED_MAX)
    require_float32("lr", 3.4e38, positive=True)
    require_float32("noise", 0)
    require_int("n", INT64_MAX, 1, INT64_MAX)


def test_a_folder_is_made_or_refused_naming_the_path_and_why(tmp_path, monkeypatch):
    make_folder("dir", tmp_path / "a" / "b")  # made, with its parents
    assert (tmp_path / "a" / "b").is_dir()
    make_folder("dir", tmp_path / "a")  # already there
    a_file = tmp_path / "file"
    a_file.write_text("")
    for path in (a_file, a_file / "below"):
        with pytest.raises(ConfigError) as error:
            make_folder("dir", path)
        assert str(error.value) == (
            f"dir='{path}' is not allowed: a folder that can be made "
            f"({a_file} is a file, not a folder)"
        )
    monkeypatch.setattr("os.access", lambda path, mode: False)  # a read-only folder
    with pytest.raises(ConfigError, match="a folder this process can write into"):
        make_folder("dir", tmp_path / "a")
