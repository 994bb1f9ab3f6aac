"""A sweep's report in `<sweep>/report/`: a search's for a search's folder, else a grid's.

    python -m src.report multirun/2026-11-26/21-30-05
    python -m src.report <sweep dir> --rows model.depth --cols model.lr --seed 2

The grid's options (--rows, --cols, --seed, --facet) are refused for a search.
"""

from __future__ import annotations

import sys
from pathlib import Path

from omegaconf import OmegaConf

from src.report import grid, study
from src.sweep.progress import sweep_state
from src.sweep.space import is_search


def is_search_folder(sweep_dir: Path) -> bool:
    """Whether the sweep in `sweep_dir` is a search, as its .sweep.json (or, for a sweep that
    has none, its multirun.yaml's sweeper settings) says; a folder with neither is not (the
    grid's report then says what is wrong)."""
    state = sweep_state(sweep_dir)
    if "kind" in state:
        return is_search(state)
    try:
        config = OmegaConf.load(Path(sweep_dir) / "multirun.yaml")
        return is_search(OmegaConf.select(config, "hydra.sweeper"))
    except Exception:  # no such file, a folder in its place, not yaml, not a sweep's
        return False


def main(argv: list[str] | None = None) -> int:
    parser = grid.arguments()
    parser.description = __doc__.split("\n")[0]
    args = parser.parse_args(argv)
    if not is_search_folder(args.sweep_dir):
        return grid.main(argv)
    options = [key for key in vars(args) if key != "sweep_dir"]  # the grid's: --rows, --cols...
    given = [f"--{key}" for key in options if getattr(args, key) != parser.get_default(key)]
    if given:
        parser.error(f"{', '.join(given)}: a grid's report's; {args.sweep_dir} is a search")
    return study.main([str(args.sweep_dir)])


if __name__ == "__main__":
    sys.exit(main())
