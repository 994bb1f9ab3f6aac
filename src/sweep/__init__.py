"""A sweep of runs (`python -m src.train -m`): what Hydra's launchers run, checked and counted.

`checks`: before the first job (launcher settings, resume into the same sweep only); `jobs`: one
job, the seeds of one configuration trained as one stack and written one folder each; `runs`:
their wandb runs, all in `<sweep>/wandb/`, and their ids; `progress`: its line when it ends;
`summary`: the count by status at the end; `space`: the Bayesian search's space. The
seed-stacking sweeper itself is a Hydra plugin: hydra_plugins/.
"""
