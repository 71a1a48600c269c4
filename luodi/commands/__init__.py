"""CLI commands of each feature, one module each. Every module here registers its commands on the
typer groups of ``luodi.commands._apps`` when imported; ``luodi.cli`` imports the modules listed below."""

from luodi.evaluate import MODULES as EVAL_MODULES

MODULES = [
    # one line per feature module, e.g. "luodi.commands.segment"
    "luodi.commands.intent",
    "luodi.commands.assistant",
    "luodi.commands.distill",
    "luodi.commands.segment",
    "luodi.commands.serve",
    "luodi.commands.optimize",
    "luodi.commands.match",
    "luodi.commands.generate",
]
MODULES += EVAL_MODULES  # the `luodi eval` group: measuring code, one module per topic
