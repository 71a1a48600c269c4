"""``luodi ask``: the whole assistant on text, printing each stage and its time."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from luodi.cli import app, console

SAMPLES = [
    "放首周杰伦的歌明天天气怎么样",
    "我想听刘德华的冰雨",
    "给我讲个笑话吧",
    "你叫什么名字",
    "今天好累啊",
]


@app.command()
def ask(
    texts: list[str] = typer.Argument(None, help="ASR text (unpunctuated); default: a few samples."),
    config: Path = typer.Option(None, help="Assistant YAML (default: the trained models in the cache)."),
    as_json: bool = typer.Option(False, "--json", help="Print the raw output dicts."),
) -> None:
    """Sentence breaking -> segmentation -> gazetteer -> intent + slots -> answer, stage by stage."""
    from luodi.pipeline import Assistant

    assistant = Assistant.from_config(config) if config else Assistant()
    if assistant.missing:
        console.print(f"[yellow]not configured (stages skipped): {', '.join(assistant.missing)}[/yellow]")
    for doc in assistant(texts or SAMPLES):
        if as_json:
            console.print_json(json.dumps(doc, ensure_ascii=False))
            continue
        console.print(f"\n[bold]{doc['text']}[/bold]  ->  {' '.join(doc['sentences'])}")
        for q in doc["queries"]:
            console.print(f"  [cyan]{q['text']}[/cyan]")
            for key in ("seg/fine", "seg/coarse"):
                if key in q:
                    console.print(f"    {key:<10} {' / '.join(q[key])}")
            if q.get("gazetteer"):
                console.print(
                    "    gazetteer  " + ", ".join(f"{m['type']}={m['value']}" for m in q["gazetteer"])
                )
            if "intent" in q:
                slots = ", ".join(f"{s['type']}={s['value']}" for s in q["slots"])
                console.print(f"    intent     {q['intent']} ({q['score']:.2f}) {slots}")
            console.print(f"    answer     {json.dumps(q['answer'], ensure_ascii=False)}")
        console.print("  timings ms " + ", ".join(f"{k} {v:.1f}" for k, v in doc["timings"].items()))
