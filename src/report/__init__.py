"""What a sweep shows: results.csv, the figures and a page to read, in `<sweep>/report/`.

`results`: the job folders read into rows (results.csv); `layout`: the rows laid out as the
grid (`Report`, `build`), which the page and the figures both read; `grid`: the grid's page and
its wandb run; `views` turn the Report into figures drawn by `figures` (torch, matplotlib:
imported only by whoever draws); `study`: a search's report from its Optuna study; `callback`:
the report at the end of every multirun, drawn by the sweep's idle workers (`workers`);
`__main__`: `python -m src.report <sweep>`, a grid's or a search's report as the callback
chooses. `claims`: the course report's conclusions decided on the sweep's runs (claims.csv, the
page's Claims section, `python -m src.report.claims`), by the statistics and rule of
`evidence`, with `claim_figures`.
"""
