"""What the assistant's breaking gets wrong on spoken streams, by kind, with counts (issue 28's analysis):

    python -m bench.break_errors                                   # tune streams, release/assistant.yaml
    python -m bench.break_errors --config my.yaml --examples 3     # another decoder, a few examples per kind

Breaking only (the breaker, the joint decoder when the config turns it on, fillers attached as the pipeline
attaches them), so a run over the 5,247 tune streams takes seconds. Per stream: ``merged`` (fewer queries
than gold), ``split`` (more) or ``shifted`` (as many, misplaced), the ``luodi eval assistant`` kinds. Per
wrong boundary:
- a gold boundary not made (``missed``) and a boundary made where gold has none (``extra``) within 3
  characters of each other are one ``shift`` (``filler on the wrong side`` when only fillers lie between);
- every other ``missed`` / ``extra`` boundary is counted once by the breaker's boundary probability there
  (``p<0.1``, ``p 0.1-0.3``, ``p 0.3-0.7``, ``p 0.7-0.9``, ``p>=0.9``: how sure the breaker was) and once
  by each tag that fits it: the next gold query starts with a filler, a side of at most 4 characters, a side
  that is chit-chat (``chat``) or noise (``other``); for an extra boundary, a cut at a gold slot's start
  (a command cut from its object: 打电话给 | 张伟), inside a gold slot, or a piece of at most 2 characters.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence

from luodi.data.skills import FILLERS, Stream, is_filler

SHIFT_CHARS = 3  # a missed and an extra boundary this close are one misplaced boundary


def ends(lengths: Sequence[int]) -> list[int]:
    """The index of each query's last character in the stream."""
    out, pos = [], 0
    for n in lengths:
        pos += n
        out.append(pos - 1)
    return out


def band(p: float) -> str:
    for edge, name in ((0.1, "p<0.1"), (0.3, "p 0.1-0.3"), (0.7, "p 0.3-0.7"), (0.9, "p 0.7-0.9")):
        if p < edge:
            return name
    return "p>=0.9"


def _query_at(stream: Stream, pos: int):
    start = 0
    for q in stream.queries:
        if start <= pos < start + len(q.text):
            return q, start
        start += len(q.text)
    raise IndexError(pos)


def _missed_tags(stream: Stream, g: int) -> list[str]:
    left, _ = _query_at(stream, g)
    right, _ = _query_at(stream, g + 1)
    tags = ["next starts with a filler"] if right.text.startswith(FILLERS) else []
    if min(len(left.text), len(right.text)) <= 4:
        tags.append("a side <= 4 chars")
    tags += [f"a side is {x}" for x in ("chat", "other") if x in (left.intent, right.intent)]
    return tags


def _extra_tags(stream: Stream, e: int) -> list[str]:
    q, start = _query_at(stream, e)
    cut = e - start + 1  # the gold query is cut before its character ``cut``
    left, right = q.text[:cut], q.text[cut:]
    tags = []
    if any(s.start == cut for s in q.slots):
        tags.append("at a slot's start (command | object)")
    if any(s.start < cut < s.end for s in q.slots):
        tags.append("inside a slot")
    if min(len(left), len(right)) <= 2:
        tags.append("a piece <= 2 chars")
    if right.startswith(FILLERS):
        tags.append("before a filler")
    tags.append(f"in a {q.intent if q.intent in ('chat', 'other') else 'skill'} query")
    return tags


def categorise(stream: Stream, queries: Sequence[str], boundary: Sequence[float]) -> tuple[str, Counter]:
    """(the stream's kind: exact / merged / split / shifted, Counter of its wrong boundaries' categories),
    ``queries`` the predicted queries (they spell the stream), ``boundary`` the breaker's P(a query ends
    after each character)."""
    gold = set(ends([len(q.text) for q in stream.queries])[:-1])
    made = set(ends([len(q) for q in queries])[:-1])
    kind = "exact" if gold == made else "merged" if len(made) < len(gold) else "split"
    kind = "shifted" if kind == "split" and len(made) == len(gold) else kind
    counts: Counter = Counter()
    extra = sorted(made - gold)
    for g in sorted(gold - made):
        near = [e for e in extra if abs(e - g) <= SHIFT_CHARS]
        if near:
            extra.remove(near[0])
            between = stream.text[min(g, near[0]) + 1 : max(g, near[0]) + 1]
            counts["shift: filler on the wrong side" if is_filler(between) else "shift: other"] += 1
            continue
        counts[f"missed {band(boundary[g])}"] += 1
        counts.update(f"missed: {t}" for t in _missed_tags(stream, g))
    for e in extra:
        counts[f"extra {band(boundary[e])}"] += 1
        counts.update(f"extra: {t}" for t in _extra_tags(stream, e))
    return kind, counts


def run(config_path: str | None, split: str, examples: int) -> None:
    from luodi.data.skills import iter_spoken_streams
    from luodi.pipeline import Assistant, _attach_fillers, default_config
    from luodi.tasks.break_decode import boundary_probabilities

    config = Assistant.config_from_file(config_path) if config_path else default_config()
    assistant = Assistant(config)
    breaker = assistant.joint_breaker or assistant.breaker
    streams = list(iter_spoken_streams(split, passes=3) if split == "tune" else iter_spoken_streams(split))
    kinds: Counter = Counter()
    totals: Counter = Counter()
    shown: dict[str, list[str]] = {}
    for stream in streams:
        broken = breaker(stream.text)
        queries = [q for q, _ in _attach_fillers([(q, q) for q in broken.queries if q.strip()])]
        boundary = boundary_probabilities(assistant.breaker.probabilities([stream.text])[0])
        kind, counts = categorise(stream, queries, boundary)
        kinds[kind] += 1
        kinds[f"{kind} {stream.source}"] += 1
        totals.update(counts)
        for key in counts if kind != "exact" else ():
            if len(shown.setdefault(key, [])) < examples:
                gold = " | ".join(q.text for q in stream.queries)
                shown[key].append(f"{gold}  ->  {' | '.join(queries)}")
    print(f"{split} streams: {len(streams)}, config: {config_path or 'release/assistant.yaml'}")
    for key, n in sorted(kinds.items()):
        print(f"  {key:32s} {n:6d}  {100.0 * n / len(streams):6.2f} %")
    print("wrong boundaries:")
    for key, n in sorted(totals.items()):
        print(f"  {key:48s} {n:6d}")
        for line in shown.get(key, []):
            print(f"      {line}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="Assistant YAML (default: release/assistant.yaml)")
    parser.add_argument("--set", dest="split", default="tune", choices=["tune", "dev"])
    parser.add_argument("--examples", type=int, default=0, help="examples printed per category")
    args = parser.parse_args(argv)
    run(args.config, args.split, args.examples)


if __name__ == "__main__":
    main()
