"""The experiment reports: docs/<topic>.md rendered from results/<topic>.json.

Not part of the installed package (pyproject's package find includes ``luodi*`` only). ``luodi eval X
--write`` measures, merges its rows into results/X.json and then calls ``render.render("X")`` when the
checkout has this folder. Prose lives in ``templates/<topic>.md`` (Jinja2), targets in ``targets.yaml``,
and ``<topic>.py`` computes what a template quotes from the results file's rows."""
