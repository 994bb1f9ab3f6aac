"""conf/autodiff/train.yaml repeats src/autodiff/schema.py's defaults with comments: they must
not drift apart; and a key the study does not read is refused in one line."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.autodiff.schema import SECTIONS, AutodiffConf, check_keys
from src.errors import ConfigError
from src.run.schema import defaults, settings

CONF = Path(__file__).resolve().parents[1] / "conf" / "autodiff"


def test_the_yaml_gives_the_schemas_defaults():
    conf = OmegaConf.to_container(OmegaConf.load(CONF / "train.yaml"))
    for section, schema in SECTIONS.items():
        assert conf[section] == defaults(settings(schema)), section
    top = {key: conf[key] for key in settings(AutodiffConf) if key not in SECTIONS}
    assert top == {key: getattr(AutodiffConf(), key) for key in top}


@pytest.mark.parametrize(
    "override, message",
    [
        ("+model.width=3", "model.width=3 is not allowed: a key of model: hidden, activation, "),
        ("+epochs=3", "epochs=3 is not allowed: a key of the config: seed, backend, data, "),
        ("~train.lr", "train.lr=None is not allowed: a value: the key cannot be removed"),
    ],
)
def test_a_key_the_study_does_not_read_is_refused(override, message):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=["output_dir=null", override])
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        check_keys(cfg)
