"""``luodi eval assistant``: the shipped assistant end to end on spoken streams (results/assistant.json)."""

from __future__ import annotations

from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app


@eval_app.command("assistant")
def eval_assistant(
    data: Path = typer.Option(
        None,
        help="Streams JSONL ({'text', 'queries': [{'text', 'intent', 'slots'}]}); default: the dev streams.",
    ),
    config: Path = typer.Option(None, help="Assistant YAML (default: release/assistant.yaml)."),
    name: str = typer.Option(None, help="Row name prefix (default: 'release', or the config file's stem)."),
    intent_sets: bool = typer.Option(
        True, help="Also score the intent model alone per source test set, beside TF-IDF + LinearSVC."
    ),
    export: Path = typer.Option(
        None, help="Write the streams scored to this JSONL file (the --data format)."
    ),
    threads: int = typer.Option(None, help="Threads (default: the config's)."),
    intent_labels: str = typer.Option(
        None,
        help="The intent model speaks a source's labels (cais, nlpcc2018): map its intents and slot types "
        "through the skill schema before scoring (to score an assistant built before the schema).",
    ),
    write: bool = typer.Option(False, help="Merge the rows into results/assistant.json + docs/assistant.md."),
) -> None:
    """End-to-end benchmark: breaking exact match, per-query intent accuracy and macro-F1, slot F1,
    whole-stream exact, and which stage made each wrong stream wrong."""
    from luodi.assistant_eval import examples_table, score_streams
    from luodi.data.skills import read_streams, spoken_streams, write_streams
    from luodi.pipeline import Assistant, AssistantConfig, default_config

    base = Assistant.config_from_file(config) if config else default_config()
    if threads:
        base = AssistantConfig(**{**vars(base), "threads": threads})
    assistant = Assistant(base)
    console.print(f"[bold]assistant[/bold] {assistant.describe()}")
    prefix = name or ("release" if config is None else config.stem)
    streams = read_streams(data) if data else spoken_streams("dev")
    set_name = data.stem if data else "dev-streams"
    if export:
        write_streams(streams, export)
        console.print(f"wrote {len(streams)} streams to {export}")
    scored = _Relabelled(assistant, intent_labels) if intent_labels else assistant
    result = score_streams(scored, streams)
    rows = [{"name": f"{prefix} {set_name}", **_round(result["all"])}]
    sources = sorted({s.source for s in streams})
    if len(sources) > 1:
        rows += [{"name": f"{prefix} {set_name} {src}", **_round(result[src])} for src in sources]
    if intent_sets and data is None and assistant.intent is not None and not intent_labels:
        rows += _intent_rows(assistant.intent, prefix)
    for r in rows:
        console.print(r)
    if write:
        from luodi.results import merge_results

        sections = {f"examples {prefix} {set_name}": (
            f"### Wrong streams, {prefix} {set_name} (first 12)\n\n" + examples_table(streams, result))}  # fmt: skip
        js, md = merge_results("assistant", rows, sections=sections)
        console.print(f"wrote {js}" + (f" and {md}" if md else ""))


class _Relabelled:
    """An assistant whose intent model speaks a source's labels, its outputs mapped onto the schema."""

    def __init__(self, assistant, source: str) -> None:
        from luodi.data.skills import SkillSchema

        self.assistant, self.source, self.schema = assistant, source, SkillSchema.load()
        self.config = type("Config", (), {"non_skill_intents": self.schema.non_skill})()

    def __call__(self, text: str) -> dict:
        doc = self.assistant(text)
        for q in doc.get("queries", []):
            if q.get("intent") is not None:
                q["intent"] = self.schema.intent_of(self.source, q["intent"])
                slots = [(s, self.schema.slot_of(self.source, s["type"])) for s in q.get("slots", [])]
                q["slots"] = [{**s, "type": t} for s, t in slots if t]
        return doc


def _round(row: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


SOURCE_NAMES = {"cais": "CAIS test", "nlpcc2018": "NLPCC dev", "smp2020": "SMP dev", "lccc": "LCCC valid"}


def _intent_rows(intent_model, prefix: str) -> list[dict]:
    """The intent model alone and TF-IDF + LinearSVC (trained on the same data) on each source's test."""
    from luodi.data.skills import assistant_intent_data
    from luodi.text.ngrams import CharSvm
    from luodi.train.metrics import accuracy, macro_f1, span_f1

    train, _, tests = assistant_intent_data()
    svm = CharSvm([e.text for e in train], [e.intent for e in train])  # one baseline for every source
    rows = []
    for source, test in tests.items():
        texts, gold = [e.text for e in test], [e.intent for e in test]
        labels = sorted(set(gold))  # macro-F1 over the source's own intents (a wrong label costs recall)
        pred, tags, _ = intent_model.predict_tags(texts)
        svm_pred = svm.predict(texts)
        label = SOURCE_NAMES.get(source, source)
        rows.append({"name": f"{prefix} intent {label}", "examples": len(test), "accuracy": round(accuracy(gold, pred), 2),
                     "macro_f1": round(macro_f1(gold, pred, labels), 2),
                     "slot_f1": round(span_f1([list(e.tags) for e in test], tags)["f1"], 2)})  # fmt: skip
        rows.append({"name": f"tfidf-svm intent {label}", "examples": len(test),
                     "accuracy": round(accuracy(gold, svm_pred), 2), "macro_f1": round(macro_f1(gold, svm_pred, labels), 2)})  # fmt: skip
    return rows
