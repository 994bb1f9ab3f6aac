"""A Hydra sweeper that launches the seeds of a configuration as one job (seed_stacking).

It expands a sweep exactly as Hydra's BasicSweeper does, then merges the jobs that differ only
in `seed` into one job that receives all their seeds as `++seeds=[...]`, and launches those
through the configured launcher. The task trains them as one stacked model.
"""
