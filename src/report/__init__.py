"""What a sweep shows: results.csv, the figures and a page to read, in `<sweep>/report/`.

`results`: the job folders read into rows (results.csv); `layout`: the rows laid out as the
grid (`Report`, `build`), which the page and the figures both read; `grid`: the grid's page,
its wandb run and `python -m src.report`; `views` turn the Report into figures drawn by
`figures` (torch, matplotlib: imported only by whoever draws); `search`: a search's report
from its Optuna study (`python -m src.search`); `callback`: the report at the end of every
multirun, drawn by the sweep's idle workers (`workers`). `claims`: the course report's
conclusions decided on the sweep's runs (claims.csv, the page's Claims section, `python -m
src.report.claims`), by the statistics and rule of `evidence`, with `claim_figures`.
"""
