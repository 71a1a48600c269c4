"""``luodi eval <topic>``: one module per topic, each measuring and printing its rows; with ``--write`` it
merges them into results/<topic>.json (``luodi.results``), which re-renders docs/<topic>.md through the
checkout's ``experiments/`` (the reports' prose and targets live there, not here)."""

MODULES = [
    "luodi.evaluate.assistant",
    "luodi.evaluate.pipeline",
    "luodi.evaluate.distillation",
    "luodi.evaluate.encoder",
    "luodi.evaluate.faq",
    "luodi.evaluate.gate",
    "luodi.evaluate.generation",
    "luodi.evaluate.intent",
    "luodi.evaluate.matching",
    "luodi.evaluate.segmentation",
    "luodi.evaluate.routing",
    "luodi.evaluate.release_size",
]
