"""Train MLPs on generated data: one run, the seeds of one configuration as one stack, or a sweep.

    python -m src.train model.depth=3 model.width=10           # one run
    python -m src.train 'seeds=[0,1,2]'                        # three seeds, one stacked model
    python -m src.train -m model.depth=0,1,2 'seed=range(6)'   # a sweep: a job per depth

The Hydra entry point: a run is `src.run.training.train`, one job of a sweep
`src.sweep.jobs.sweep_job`.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.config import exit_on_config_error
from src.run.files import member_dir, register_resolvers
from src.run.training import is_multirun, objective, train, train_stack
from src.sweep.jobs import sweep_job

register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | list[float]:
    """Hydra entry point; returns what a sweeper minimises (val_loss, inf for a failed run),
    one value per seed for a stack."""
    if is_multirun():
        return sweep_job(cfg)
    if cfg.get("seeds") is not None:
        dirs = {s: member_dir(Path(cfg.output_dir), s) for s in cfg.seeds}
        results = exit_on_config_error(train_stack)(cfg, list(cfg.seeds), dirs)
        return [objective(m) for m in results.values()]
    return objective(exit_on_config_error(train)(cfg))


if __name__ == "__main__":
    main()
