"""The assistant measured end to end: spoken streams in, every stage's output scored, and each wrong stream
blamed on the first stage that went wrong.

    streams = spoken_streams("dev")              # or read_streams("my_traffic.jsonl")
    report = score_streams(Assistant(), streams)
    report["all"] -> {"break_exact": ..., "accuracy": ..., "macro_f1": ..., "slot_f1": ..., "stream_exact": ...}

Per stream: the assistant breaks ``stream.text`` into queries (character spans). ``break_exact``: the spans
are the gold queries' spans. Each gold query is judged by the predicted query that overlaps it most
(so one extra break does not also count as a wrong intent): ``accuracy`` / ``macro_f1`` of its intent
(a gold label that also accepts other intents, NLPCC-2018's catch-all OTHERS, counts any of them right;
``accuracy_strict`` asks the gold label itself),
``slot_f1`` over (type, value) pairs. ``stream_exact``: breaks exact and every query's intent right (the
figure a user feels: every request understood); ``stream_exact_slots`` also asks every slot right.
``key_slots``: the file lists only each query's key slots (a hand-written test set: 导航到北京南站 lists the
destination, 今天星期几 lists nothing though 今天 is a date): a predicted slot it does not list is not
counted wrong, and ``slot_recall`` (the listed slots found) replaces ``slot_f1``.
``breaks_merged`` / ``breaks_split`` / ``breaks_shifted``: streams with fewer, more, or as many but misplaced
queries; ``non_skill_swaps``: queries whose chat / other label was swapped (routed alike, so harmless);
``by_grammar``: queries whose intent the command grammar gave (``luodi.text.grammar``), ``grammar_right``
the share of those that are right.

Error attribution (streams that are not wholly right: breaks, intents, slots, routing): the first of
- ``breaking``: the spans differ from the gold queries';
- ``gazetteer``: a query's intent is wrong and the gazetteer matched something that is not a gold slot there
  (我不想说出这个秘密: the song lexicon holds 我不想说);
- ``intent``: a query's intent is wrong (no false gazetteer hit in it);
- ``slots``: the intents are right, a query's slots are not;
- ``routing``: all of that right, but a skill intent was not acted on (below the confidence threshold, or
  an FAQ answered it) or a non-skill query was answered by a skill.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from luodi.data.intent import judged
from luodi.data.skills import SkillSchema, Stream
from luodi.train.metrics import accuracy, macro_f1

STAGES = ("breaking", "gazetteer", "intent", "slots", "routing")


def _spans(lengths: Sequence[int]) -> list[tuple[int, int]]:
    out, pos = [], 0
    for n in lengths:
        out.append((pos, pos + n))
        pos += n
    return out


def _best(gold: tuple[int, int], predicted: Sequence[tuple[int, int]]) -> int | None:
    overlaps = [max(0, min(gold[1], e) - max(gold[0], s)) for s, e in predicted]
    if not overlaps or max(overlaps) == 0:
        return None
    return overlaps.index(max(overlaps))


def judge_stream(stream: Stream, doc: dict, non_skill: set[str], key_slots: bool = False) -> dict:
    """One stream's verdict: per gold query (intent, slots, predicted intent and slots, routing) and the
    stage blamed (None when the stream is wholly right). ``key_slots``: predicted slots the gold does not
    list are left out (the gold lists key slots only)."""
    predicted = doc.get("queries", [])
    pred_spans = _spans([len(q["text"]) for q in predicted])
    gold_spans = _spans([len(q.text) for q in stream.queries])
    breaks_ok = pred_spans == gold_spans
    queries = []
    for gold, span in zip(stream.queries, gold_spans, strict=True):
        i = _best(span, pred_spans)
        pred = predicted[i] if i is not None else {}
        gold_slots = Counter((s.type, s.value) for s in gold.slots)
        pred_slots = Counter((s["type"], s["value"]) for s in pred.get("slots", []))
        if key_slots:
            pred_slots &= gold_slots
        gold_values = {s.value for s in gold.slots}
        false_hit = any(m["value"] not in gold_values for m in pred.get("gazetteer", []))
        answer = pred.get("answer", {}).get("type")
        heard = pred.get("intent")
        scored = judged(gold, heard)
        meant = gold.intent
        if heard in gold.accepts:  # an accepted answer of an open gold label (讲个笑话 under NLPCC's OTHERS)
            gold_slots = pred_slots = Counter()  # its slots were never annotated, so they are not scored
            meant = heard  # and it is acted on as itself
        skill = meant not in non_skill
        queries.append({
            "gold": gold.intent, "pred": scored, "gold_slots": gold_slots, "pred_slots": pred_slots,
            "intent_ok": scored == gold.intent, "strict_ok": heard == gold.intent,
            "slots_ok": gold_slots == pred_slots,
            "routing_ok": (answer == "action") == skill, "false_hit": false_hit,
            # chit-chat heard as noise or the reverse: both non-skill, routed alike, so no difference to a user
            "non_skill_swap": not skill and scored != gold.intent and heard in non_skill,
            "by_grammar": pred.get("intent_by") == "grammar",
        })  # fmt: skip
    blame = None
    if not breaks_ok:
        blame = "breaking"
    elif not all(q["intent_ok"] for q in queries):
        blame = "gazetteer" if any(q["false_hit"] for q in queries if not q["intent_ok"]) else "intent"
    elif not all(q["slots_ok"] for q in queries):
        blame = "slots"
    elif not all(q["routing_ok"] for q in queries):
        blame = "routing"
    n_pred, n_gold = len(pred_spans), len(gold_spans)
    breaks = (
        "exact" if breaks_ok else "merged" if n_pred < n_gold else "split" if n_pred > n_gold else "shifted"
    )
    return {"breaks_ok": breaks_ok, "breaks": breaks, "queries": queries, "blame": blame}


def _slot_f1(queries: Sequence[dict]) -> float:
    tp = sum(sum((q["gold_slots"] & q["pred_slots"]).values()) for q in queries)
    n_gold = sum(sum(q["gold_slots"].values()) for q in queries)
    n_pred = sum(sum(q["pred_slots"].values()) for q in queries)
    return 100.0 * 2 * tp / (n_gold + n_pred) if n_gold + n_pred else 100.0


def _slot_recall(queries: Sequence[dict]) -> float:
    n_gold = sum(sum(q["gold_slots"].values()) for q in queries)
    tp = sum(sum((q["gold_slots"] & q["pred_slots"]).values()) for q in queries)
    return 100.0 * tp / n_gold if n_gold else 100.0


def summarise(verdicts: Sequence[dict], key_slots: bool = False) -> dict:
    queries = [q for v in verdicts for q in v["queries"]]
    gold = [q["gold"] for q in queries]
    pred = [str(q["pred"]) for q in queries]
    n = len(verdicts)
    row = {
        "streams": n,
        "queries": len(queries),
        "break_exact": 100.0 * sum(v["breaks_ok"] for v in verdicts) / n,
        "accuracy": accuracy(gold, pred),
        "accuracy_strict": 100.0 * sum(q["strict_ok"] for q in queries) / max(1, len(queries)),
        "macro_f1": macro_f1(gold, pred),
        **({"slot_recall": _slot_recall(queries)} if key_slots else {"slot_f1": _slot_f1(queries)}),
        "stream_exact": 100.0 * sum(v["breaks_ok"] and all(q["intent_ok"] for q in v["queries"]) for v in verdicts) / n,
        "stream_exact_slots": 100.0 * sum(v["blame"] is None for v in verdicts) / n,
    }  # fmt: skip
    blames = Counter(v["blame"] for v in verdicts if v["blame"])
    row.update({f"blame_{stage}": 100.0 * blames[stage] / n for stage in STAGES})
    breaks = Counter(v.get("breaks") for v in verdicts)
    row.update({f"breaks_{kind}": 100.0 * breaks[kind] / n for kind in ("merged", "split", "shifted")})
    row["non_skill_swaps"] = 100.0 * sum(q["non_skill_swap"] for q in queries) / max(1, len(queries))
    ruled = [q for q in queries if q["by_grammar"]]
    row["by_grammar"] = 100.0 * len(ruled) / max(1, len(queries))
    if ruled:  # how often the command grammar's certainty was right
        row["grammar_right"] = 100.0 * sum(q["intent_ok"] for q in ruled) / len(ruled)
    return row


def score_streams(
    assistant, streams: Sequence[Stream], key_slots: bool = False, gold_breaks: bool = False
) -> dict:
    """{"all": row, <source>: row, "verdicts": [...], "docs": [...]}: ``assistant`` is any callable from
    text to the pipeline's output dict (``luodi.pipeline.Assistant``). ``key_slots``: see the module doc.
    ``gold_breaks``: each stream is given already broken at its gold boundaries
    (``assistant.understand_queries``): what every later stage would score behind a perfect breaker."""
    non_skill = set(getattr(assistant.config, "non_skill_intents", SkillSchema.load().non_skill))
    if gold_breaks:
        docs = [assistant.understand_queries([q.text for q in s.queries]) for s in streams]
    else:
        docs = [assistant(s.text) for s in streams]
    verdicts = [judge_stream(s, d, non_skill, key_slots) for s, d in zip(streams, docs, strict=True)]
    out = {"all": summarise(verdicts, key_slots), "verdicts": verdicts, "docs": docs}
    for source in sorted({s.source for s in streams}):
        mine = [v for s, v in zip(streams, verdicts, strict=True) if s.source == source]
        out[source] = summarise(mine, key_slots)
    return out


def examples_table(streams: Sequence[Stream], result: dict, n: int = 12) -> str:
    """A Markdown table of the first ``n`` wrong streams: what was said, what the assistant heard, the
    stage blamed (for a person to read beside the figures)."""
    lines = ["| stream | gold | assistant | blamed |", "|---|---|---|---|"]
    shown = 0
    for stream, verdict, doc in zip(streams, result["verdicts"], result["docs"], strict=True):
        if verdict["blame"] is None or shown >= n:
            continue
        gold = " / ".join(f"{q.text} {q.intent}" for q in stream.queries)
        heard = " / ".join(f"{q['text']} {q.get('intent', '-')}" for q in doc.get("queries", []))
        lines.append(f"| {stream.text} | {gold} | {heard} | {verdict['blame']} |")
        shown += 1
    return "\n".join(lines)
