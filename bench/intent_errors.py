"""Which intents the assistant confuses on spoken streams whose breaks are right (issue 28's analysis):

    python -m bench.intent_errors                        # dev streams, release/assistant.yaml
    python -m bench.intent_errors --set tune --top 40    # the train-split tuning streams

The whole pipeline runs (``luodi.assistant_eval.score_streams``, as ``luodi eval assistant`` scores it);
only streams broken exactly as gold count, so each error is the intent model's (or its gazetteer's), not
the breaker's. Per (source, gold intent, intent heard), the count and a few of the queries. A swap of the
two non-skill intents (``chat`` heard as ``other`` or the reverse) is routed alike, so it is also totalled
on its own.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Sequence


def confusions(streams, verdicts) -> tuple[Counter, dict, int]:
    """(Counter of (source, gold, heard), up to 4 example texts per key, queries with exact breaks)."""
    counts: Counter = Counter()
    examples: dict[tuple, list[str]] = {}
    judged = 0
    for stream, verdict in zip(streams, verdicts, strict=True):
        if not verdict["breaks_ok"]:
            continue
        for gold, query in zip(stream.queries, verdict["queries"], strict=True):
            judged += 1
            if not query["intent_ok"]:
                key = (stream.source, query["gold"], str(query["pred"]))
                counts[key] += 1
                if len(examples.setdefault(key, [])) < 4:
                    examples[key].append(gold.text)
    return counts, examples, judged


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="Assistant YAML (default: release/assistant.yaml)")
    parser.add_argument("--set", dest="split", default="dev", choices=["tune", "dev"])
    parser.add_argument("--top", type=int, default=30, help="confusions printed, most frequent first")
    args = parser.parse_args(argv)

    from luodi.assistant_eval import score_streams
    from luodi.commands.assistant import load_assistant
    from luodi.data.skills import spoken_streams

    assistant = load_assistant(args.config)
    streams = spoken_streams(args.split)
    verdicts = score_streams(assistant, streams)["verdicts"]
    counts, examples, judged = confusions(streams, verdicts)
    non_skill = set(assistant.config.non_skill_intents)
    swaps = sum(c for (_, gold, heard), c in counts.items() if gold in non_skill and heard in non_skill)
    total = sum(counts.values())
    print(f"{args.split} streams: {total} intent errors in {judged} queries of exactly broken streams; "
          f"{swaps} of them chat <-> other swaps (routed alike)")  # fmt: skip
    for (source, gold, heard), n in counts.most_common(args.top):
        print(f"{n:5d}  {source:10s} {gold} -> {heard}   {' / '.join(examples[(source, gold, heard)])}")


if __name__ == "__main__":
    main()
