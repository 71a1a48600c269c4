"""CLI commands of each feature, one module each. Every module here registers its commands on the
typer groups of ``luodi.commands._apps`` when imported; ``luodi.cli`` imports the modules listed below."""

MODULES = [
    # one line per feature module, e.g. "luodi.commands.segment"
    "luodi.commands.intent",
    "luodi.commands.assistant",
    "luodi.commands.assistant_eval",
    "luodi.commands.distill",
    "luodi.commands.segment",
    "luodi.commands.serve",
    "luodi.commands.optimize",
    "luodi.commands.match",
    "luodi.commands.generate",
    "luodi.commands.routing",
    "luodi.commands.release_size",
]
