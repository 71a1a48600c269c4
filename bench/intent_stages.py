"""Where one /v1/intent query's time goes inside the model, without HTTP: the release int8 intent model
called from Python, stage by stage, under the thread settings a service can choose.

    python -m bench.intent_stages            # writes results/intent_stages.json, docs/intent_stages.md

Stages per call (median of --repeats calls, after a warm-up): ``encode_ms`` (characters -> ids and
gazetteer label ids), ``onnx_ms`` (ONNX Runtime session alone on those inputs), ``decode_ms`` (the rest of
the call: slot logits per text, BIOES Viterbi, softmax, top-k, answer dicts; = call - encode - onnx) and
``p50_ms`` for the whole ``IntentModel.__call__``. Rows at batch 1 and batch 32 (``per_item_ms``), for torch
threads x ORT threads x ORT spinning: torch runs the glue between ORT runs, and the two thread pools
share the 2 cores.
"""

from __future__ import annotations

import argparse

import numpy as np

QUERIES = ["播放刘德华的冰雨", "明天北京天气怎么样", "我想听周杰伦的歌", "你好呀", "帮我订一张去上海的机票",
           "把音量调大一点", "今天会下雨吗", "放一首轻松的音乐"]  # fmt: skip
SETTINGS = [(1, 1, False), (1, 2, False), (2, 2, False), (2, 2, True), (1, 2, True)]  # torch, ort, spin


def median_ms(fn, repeats: int) -> float:
    """Median of exactly ``repeats`` timed calls after a warm-up (``luodi.bench.time_cell``, no time cap)."""
    from luodi.bench import BenchConfig, time_cell

    cfg = BenchConfig(warmup=max(5, repeats // 10), min_runs=repeats, target_runs=repeats, seconds=0.0)
    return float(np.median(time_cell(fn, cfg)[0]))


def measure(release: str, torch_threads: int, ort_threads: int, spinning: bool, repeats: int) -> list[dict]:
    import torch

    from luodi.runtime.tasks import load_release

    torch.set_num_threads(torch_threads)
    model = load_release("intent", release, threads=ort_threads, spinning=spinning)
    collate = model.collator()
    rows = []
    for batch_size in (1, 32):
        texts = (QUERIES * 4)[:batch_size]
        inputs = collate.encode(texts)
        n = repeats if batch_size == 1 else max(20, repeats // 10)
        encode = median_ms(lambda texts=texts: collate.encode(texts), n)
        onnx = median_ms(lambda inputs=inputs: model.model(**inputs), n)
        call = median_ms(lambda texts=texts: model(texts), n)
        rows.append(
            {
                "name": f"intent int8 batch={batch_size} torch_threads={torch_threads} "
                f"ort_threads={ort_threads} spinning={'on' if spinning else 'off'}",
                "batch": batch_size,
                "p50_ms": round(call, 3),
                "per_item_ms": round(call / batch_size, 3),
                "encode_ms": round(encode, 3),
                "onnx_ms": round(onnx, 3),
                "decode_ms": round(max(call - encode - onnx, 0.0), 3),
            }
        )
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--release", default="release/intent")
    ap.add_argument("--repeats", type=int, default=300)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    # each setting in its own process: torch's thread count is process-wide and sticky
    import json
    import os
    import subprocess
    import sys

    rows = []
    for torch_threads, ort_threads, spinning in SETTINGS:
        code = (
            "import json; from bench.intent_stages import measure; "
            f"print('ROWS', json.dumps(measure({args.release!r}, {torch_threads}, {ort_threads}, "
            f"{spinning}, {args.repeats})))"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        rows += json.loads(out.stdout.split("ROWS ", 1)[1])
        print("\n".join(line for line in out.stdout.splitlines() if not line.startswith("ROWS")))
    if args.no_write:
        return
    from luodi.results import write_results

    notes = (
        __doc__.split("\n\n", 2)[2].strip()
        + f"\n\n1-min load average at the end: {os.getloadavg()[0]:.2f}. The service's config runs the "
        "model with `threads` for both torch and ORT; ORT spinning is off by default (luodi.runtime.tasks)."
    )
    js, md = write_results("intent_stages", rows, notes=notes)
    print(f"wrote {js} and {md}")


if __name__ == "__main__":
    main()
