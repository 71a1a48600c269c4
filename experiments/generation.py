"""docs/generation.md: setup, decoding, metrics, the results against the targets and example replies,
from results/generation.json (rows, training settings, decodings, relevance order and ``facts``). A file
written before the facts were kept carries its notes as the section ``notes`` instead."""

from __future__ import annotations


def context(payload: dict, targets: dict) -> dict:
    if not payload.get("facts"):
        return {"notes": ""}
    return {"notes": _notes(payload, targets["distinct_2"])}


def _describe(strategy: str, cfg: dict) -> str:
    if strategy == "sample":
        what = f"top-p {cfg['top_p']} sampling at temperature {cfg['temperature']} (seed {cfg['seed']})"
    elif strategy == "beam":
        what = f"beam {cfg['beam_size']} (length penalty {cfg['length_penalty']}, min {cfg['min_length']} pieces)"
    else:
        what = "greedy"
    return (f"{what}, repetition penalty {cfg['repetition_penalty']}, no repeated {cfg['no_repeat_ngram']}-gram, "
            f"max {cfg['max_length']} pieces")  # fmt: skip


def _notes(payload: dict, target_distinct_2: float) -> str:
    facts, rows, settings = payload["facts"], payload["rows"], payload["settings"]
    names, decodings, posts = facts["archs"], facts["decodings"], facts["posts"]
    threads, ppl_pairs, decode_settings = facts["threads"], facts["ppl_pairs"], payload["decoding"]
    relevance, pairs = payload["relevance_order"], payload["relevance_paired_differences"]
    main = decodings[0]
    by_name = {r["name"]: r for r in rows}
    budget = "\n".join(
        f"- {a}: {s.get('layers')} layers, {s.get('steps')} steps x batch {s.get('batch_size')} = "
        f"{s.get('steps', 0) * s.get('batch_size', 0):,} dialogues seen "
        f"({s.get('steps', 0) * s.get('batch_size', 0) / max(s.get('examples', 1), 1):.2f} epochs of "
        f"{s.get('examples', 0):,}); lr {s.get('learning_rate')}, warm-up {s.get('warmup_ratio')}, label "
        f"smoothing {s.get('label_smoothing')}; {s.get('train_seconds')} s with {s.get('threads')} threads "
        f"({s.get('steps_per_s')} steps/s incl. selection); selection perplexity by step: "
        + ", ".join(f"{h['step']}: {h['ppl']}" for h in s.get("select_history", []))
        for a, s in settings.items()
    )
    losses = "\n".join(
        f"- {a}: " + ", ".join(f"{k} {v}" for k, v in s["losses"].items()) for a, s in settings.items()
    )
    order_ok = relevance == ["unilm", "gpt", "seq2seq"]
    d2 = {a: by_name[a]["distinct_2"] for a in names}
    ppls = [by_name[a]["ppl"] for a in names]
    rates = [s["steps_per_s"] for s in settings.values() if s.get("steps_per_s")]
    step_s = 1 / min(rates) if rates else float("nan")
    seen = [s["steps"] * s["batch_size"] / s["examples"] for s in settings.values() if s.get("examples")]
    epochs = max(seen) if seen else float("nan")
    lines = [
        "## Setup",
        "",
        "Every model: `luodi train generator --arch <arch> --layers 3 --max-steps <N> --threads 2` (same steps, "
        "batch, learning-rate schedule and seed), on the same data (the 10,000 LCCC toy train pairs + every "
        "(earlier turns, turn) of the 1,000 LCCC multi-turn train dialogues) from the same initialisation (the "
        "first 3 layers of multilingual-e5-small with the trimmed zh vocabulary; word embeddings frozen and tied "
        "to the output matrix). The checkpoint is chosen by reply perplexity on the multi-turn valid split; LCCC "
        "valid is never used in training.",
        "",
        budget,
        "",
        f"Why 3 layers: on 2 shared cores a training step of 32 dialogues costs ~{step_s:.1f} s (slowest arch, "
        f"selection included), so a ~10-minute budget is a few hundred steps, about {epochs:.1f} passes over the "
        "data. Six layers would halve the data seen in the same time; with this little data and time, seeing it "
        "is worth more than depth.",
        "",
        "Losses (weights; each term is the mean over its own positions). UniLM: L = L_gen + 0.5 L_mlm + 0.5 "
        "L_mask, where L_gen is left-to-right reply generation under the seq2seq mask (post bidirectional, "
        "reply causal and attending to the post), L_mlm masked LM on 15 % of the post's pieces (80/10/10), and "
        "L_mask masked-position prediction on 15 % of the reply's pieces (UniLM's original objective; a masked "
        "reply piece predicts itself, the others the next piece). GPT: L = L_gen + 0.5 L_lm(context) under a "
        "causal mask over post + reply. seq2seq: L = L_gen (decoder = a second copy of the 3 e5 layers with "
        "random cross-attention, as an EncoderDecoderModel warm start). All terms use the label smoothing "
        "listed above in training; perplexity is scored without it and without corruption.",
        "",
        losses,
        "",
        "## Decoding",
        "",
        f"Main rows (`unilm`, `gpt`, `seq2seq`): {_describe(main, decode_settings[main])}. "
        + " ".join(f"`-{s}` rows: {_describe(s, decode_settings[s])}." for s in decodings[1:]),
        "",
        "Why sampling is the default (`luodi chat`, `Generator(...)` without `strategy`): models this small and "
        "this briefly trained put most of their probability on a handful of generic replies, and beam search "
        "finds exactly those; the `-beam` rows show it (low distinct-2, the same short reply for many posts). "
        "Top-p 0.9 at temperature 0.7 (the setting commonly used with CDial-GPT on LCCC) keeps the post-specific tail "
        "while trimming its incoherent end; no repeated 3-gram and the repetition penalty stop loops. Beam "
        "stays available (`--strategy beam`) where a deterministic reply matters more than variety.",
        "",
        "## Metrics",
        "",
        f"Perplexity: reply pieces (incl. the final `</s>`, replies cut at 32 pieces) given the post, "
        f"{ppl_pairs or 'all 2,000'} LCCC valid pairs; the three archs share the tokenizer, so the figures are "
        f"comparable. BLEU-2/4 (corpus, smoothed), distinct-1/2 and average length are on characters of the "
        f"replies to the first {posts} LCCC valid posts. Relevance: mean cosine x 100 between the post's and the "
        f"reply's e5 embeddings (`luodi.encoders.Embedder`, 12 layers, zh vocabulary), with a 95 % interval "
        f"(`relevance_ci95`); relevance_margin: the same minus the reply's mean cosine with the other posts "
        f"(a generic reply scores ~0 there, a post-specific one > 0). The `reference` row scores the human "
        f"replies the same way. tokens_per_s: greedy decoding of 16 pieces, one post at a time, {threads} "
        f"thread(s), PyTorch eager, with the KV cache and recomputing the whole sequence at each step "
        f"(`_no_cache`). ONNX Runtime decoding with past key values (fp32 and int8): `python -m bench.generate_speed`, docs/generation_speed.md.",
        "",
        "## Results against the targets",
        "",
        f"Relevance order measured ({main}): {' > '.join(relevance)}; the seed's order is unilm >= gpt >= "
        f"seq2seq: {'matched' if order_ok else 'NOT matched'}. Paired differences of the per-post cosine "
        f"(x 100, 95 % interval): {'; '.join(pairs)}. An interval that contains 0 means the two are not "
        f"distinguishable on {posts} posts.",
        f"Distinct-2 ({main}): "
        + ", ".join(f"{a} {v}" for a, v in d2.items())
        + f" (target >= {target_distinct_2:g}: {'met' if min(d2.values()) >= target_distinct_2 else 'NOT met'} by every arch).",
        "",
        "Limits, plainly: 10 k training pairs, 3 layers and ~10 CPU-minutes per model are far below what "
        "open-domain chit-chat needs (CDial-GPT trains 12 layers on 12 M LCCC dialogues). Replies are short, "
        f"often generic and at times off-topic; perplexity is {min(ppls):.0f}-{max(ppls):.0f}. The figures compare "
        "the three architectures under one small, equal budget; small differences in relevance between them "
        "are within the noise above and should not be read as a general ranking.",
    ]
    for strategy in decodings:
        cols = [a if strategy == main else f"{a}-{strategy}" for a in names]
        lines += ["", f"## 20 example replies ({strategy})", "", "| post | human | " + " | ".join(names) + " |",
                  "|" + "---|" * (len(names) + 2)]  # fmt: skip
        for ex in facts["examples"]:
            cells = [ex["post"], ex["human"]] + [ex[c] for c in cols]
            lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    from experiments.render import render

    print(render("generation"))
