"""``luodi segment``, ``luodi train segment``, ``luodi eval segment`` (model: ``luodi.tasks.segment``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from luodi.commands._apps import app, console, eval_app, train_app
from luodi.paths import resolve_model_dir

VARIANTS = {  # name -> (granularities, use_bigram, aux_weight)
    "unified": (["fine", "coarse"], True, 0.1),
    "fine-only": (["fine"], True, 0.0),
    "coarse-only": (["coarse"], True, 0.0),
    "no-bigram": (["fine", "coarse"], False, 0.1),
    "no-aux": (["fine", "coarse"], True, 0.0),
}
DEFAULT_MODEL = "segment-unified-3L"


@app.command("segment")
def segment_cmd(
    text: str = typer.Argument(None, help="Text to segment (or use --input)."),
    granularity: str = typer.Option("fine", help="fine (PKU) or coarse (MSR)."),
    model: str = typer.Option(
        None,
        help="A release dir (int8 ONNX), a trained model dir, or a name under the models dir "
        "(default: the shipped release/segmenter).",
    ),
    input: Path = typer.Option(
        None, "--input", exists=True, dir_okay=False, help="UTF-8 file, one text a line."
    ),
    output: Path = typer.Option(None, "--output", help="Write one line of space-separated words per line."),
    user_dict: Path = typer.Option(
        None, "--dict", exists=True, dir_okay=False, help="User dictionary: one word a line, kept whole."
    ),
    threads: int = typer.Option(2, help="torch / ONNX Runtime threads."),
) -> None:
    """Segment text into fine or coarse words with the unified model."""
    import torch

    from luodi.commands._models import fail, load_task

    if (text is None) == (input is None):
        raise typer.BadParameter("give either a TEXT argument or --input FILE")
    torch.set_num_threads(threads)
    seg = load_task("segment", model, threads)
    if granularity not in seg.granularities:
        fail(f"--granularity {granularity}: this segmenter knows {', '.join(seg.granularities)}", code=2)
    words = None
    if user_dict is not None:
        from luodi.text.gazetteer import Gazetteer

        words = Gazetteer()
        words.add_file("user", user_dict)
    lines = [text] if text is not None else input.read_text(encoding="utf-8").splitlines()
    result = [" ".join(ws) for ws in seg(lines, granularity=granularity, user_dict=words)]
    if output is not None:
        output.write_text("\n".join(result) + ("\n" if result else ""), encoding="utf-8")
        console.print(f"wrote {len(result)} lines to {output}")
    else:
        for line in result:
            print(line)


@train_app.command("segment")
def train_segment(
    variant: str = typer.Option("unified", help=f"One of {', '.join(VARIANTS)}."),
    layers: int = typer.Option(3, help="Encoder layers (12 = teacher; 3 or 6 = student)."),
    max_chars: int = typer.Option(600_000, help="Training characters, split equally between criteria."),
    epochs: float = typer.Option(1.0, help="Passes over the sampled training set."),
    max_steps: int = typer.Option(-1, help="> 0 overrides epochs."),
    batch_size: int = typer.Option(16, help="Sentences a batch (batches group similar lengths)."),
    learning_rate: float = typer.Option(2e-4),
    aux_weight: float = typer.Option(None, help="Override the variant's auxiliary loss weight."),
    dev_sentences: int = typer.Option(200, help="Dev sentences per criterion for model selection."),
    eval_steps: int = typer.Option(
        None, help="Evaluate (and keep the best) every N steps; default once an epoch."
    ),
    threads: int = typer.Option(1, help="torch threads (1: the machine is shared)."),
    output_dir: Path = typer.Option(None, help="Default: <models>/segment-<variant>-<layers>L."),
    seed: int = typer.Option(0),
) -> None:
    """Train the segmenter (unified, single-granularity baselines, or an ablation)."""
    import torch

    from luodi.encoders import CharAligner, load_tokenizer
    from luodi.tasks.segment import (
        SegmenterConfig,
        SegmenterModel,
        balanced_sample,
        build_bigram_vocab,
        cws_sentences,
        dev_evaluator,
        length_batches,
        make_collate,
    )
    from luodi.train.trainer import TrainConfig, train

    if variant not in VARIANTS:
        raise typer.BadParameter(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
    grans, use_bigram, aux = VARIANTS[variant]
    aux = aux if aux_weight is None else aux_weight
    out = output_dir or resolve_model_dir(f"segment-{variant}-{layers}L")
    torch.manual_seed(seed)
    corpora = {g: s for g, s in cws_sentences("train").items() if g in grans}
    data = balanced_sample(corpora, max_chars, seed=seed)
    texts = ["".join(w) for _, w in data]
    cfg = SegmenterConfig(granularities=grans, use_bigram=use_bigram, aux_weight=aux,
                          bigrams=build_bigram_vocab(texts) if use_bigram else [])  # fmt: skip
    model = SegmenterModel.from_pretrained_encoder(cfg, layers=layers, vocab="zh")
    tokenizer = load_tokenizer("zh")
    aligner = CharAligner(tokenizer)
    dev = {g: s[:dev_sentences] for g, s in cws_sentences("dev").items() if g in grans}
    console.print(
        f"variant {variant}: {len(data)} sentences, {sum(map(len, texts)):,} chars "
        f"({', '.join(f'{g} {sum(1 for x, _ in data if x == g)}' for g in grans)}), "
        f"{len(cfg.bigrams):,} bigrams, aux {aux}, {layers} layers -> {out}"
    )

    evaluate = dev_evaluator(tokenizer, dev)

    tc = TrainConfig(output_dir=str(out), epochs=epochs, max_steps=max_steps, batch_size=1,
                     learning_rate=learning_rate, threads=threads, logging_steps=25, seed=seed,
                     eval_steps=eval_steps)  # fmt: skip
    start = time.perf_counter()
    batches = length_batches(data, batch_size, seed=seed)
    result = train(model, batches, make_collate(model, aligner, prebatched=True), evaluate, tc)
    model.save(out, tokenizer)
    from luodi.results import current_command

    info = {"command": current_command(), "variant": variant, "layers": layers, "sentences": len(data), "chars": sum(map(len, texts)),
            "epochs": epochs, "steps": result.steps, "batches": len(batches),
            "chars_seen": round(sum(map(len, texts)) * min(1.0, result.steps / len(batches))), "seconds": round(time.perf_counter() - start, 1),
            "best_dev": result.best_metric, "history": result.history}  # fmt: skip
    (out / "train_info.json").write_text(json.dumps(info, indent=2))
    console.print(f"best dev f1 {result.best_metric:.2f} in {info['seconds']:.0f} s; saved {out}")


# ----------------------------------------------------------------------------- evaluation


def _score(gold: list[list[str]], pred: list[list[str]], words_file: Path, tmp: Path, tag: str) -> dict:
    from luodi.train.metrics import run_sighan_score

    gold_path, pred_path = tmp / f"{tag}_gold.utf8", tmp / f"{tag}_pred.utf8"
    gold_path.write_text("".join(" ".join(s) + "\n" for s in gold), encoding="utf-8")
    pred_path.write_text("".join(" ".join(s) + "\n" for s in pred), encoding="utf-8")
    s = run_sighan_score(words_file, gold_path, pred_path)
    return {k: round(s[k], 2) for k in ("precision", "recall", "f1", "oov_recall", "oov_rate")}


def _fresh(path: Path, weights: Path) -> bool:
    return path.exists() and path.stat().st_mtime > weights.stat().st_mtime


def _predict_cached(model_dir: Path, load, corpus: str, texts: list[str], granularity: str,
                    reuse: bool) -> list[list[str]]:  # fmt: skip
    """Predictions of one model on one test set, cached in ``<model>/eval/<corpus>-<granularity>.txt``
    (a PKU pass takes minutes on a shared CPU); reused only if newer than the weights and matching the
    test text, so the cache never changes a figure, only saves recomputing it."""
    cache = model_dir / "eval" / f"{corpus}-{granularity}.txt"
    if reuse and _fresh(cache, model_dir / "model.safetensors"):
        pred = [line.split() for line in cache.read_text(encoding="utf-8").splitlines()]
        if ["".join(p) for p in pred] == texts:
            return pred
    pred = load()(texts, granularity=granularity)
    cache.parent.mkdir(exist_ok=True)
    cache.write_text("".join(" ".join(p) + "\n" for p in pred), encoding="utf-8")
    return pred


def _int8_segmenter(model_dir: Path, threads: int):
    """The int8 ONNX Runtime segmenter of ``model_dir`` (``luodi.deploy.release.export_release``: char
    vocabulary trimmed to the training characters, fused encoder, dynamic int8), built once into
    ``<model>/eval/int8/`` and rebuilt when the weights are newer."""
    from luodi.deploy.release import export_release
    from luodi.deploy.trim import release_chars
    from luodi.encoders import load_tokenizer
    from luodi.modeling import load_model
    from luodi.runtime.tasks import MODEL_FILE, load_release

    out = model_dir / "eval" / "int8"
    if not _fresh(out / MODEL_FILE, model_dir / "model.safetensors"):
        model = load_model(model_dir)  # a fresh copy: export_release trims its vocabulary in place
        info = export_release(model, load_tokenizer(model_dir=model_dir), out, release_chars())
        (out / "export.json").write_text(json.dumps(info))
    return load_release("segment", out, threads)


def encoder_flops_per_token(encoder: dict) -> int:
    """Floating-point operations per token of a BERT encoder's matrix products (QKV, output projection,
    the two FFN layers; 2 per multiply-add), from its config dict. A lower bound on the model's cost:
    attention scores, the bigram fusion and the decoder come on top. It turns a speed into the compute the
    CPU sustained, which shows whether a chars/s target is reachable with this encoder at all."""
    h, ffn, layers = encoder["hidden_size"], encoder["intermediate_size"], encoder["num_hidden_layers"]
    return 2 * layers * (4 * h * h + 2 * h * ffn)


def _chars_per_s(fn, texts: list[str]) -> float:
    fn(texts[:16])  # warm-up (lazy init, first-call allocations)
    start = time.perf_counter()
    fn(texts)
    return round(sum(map(len, texts)) / (time.perf_counter() - start))


def _jieba_parallel(texts: list[str], workers: int) -> float:
    """jieba's own parallel mode (``enable_parallel``: lines split over ``workers`` processes)."""
    import jieba

    jieba.enable_parallel(workers)
    try:
        blob = "\n".join(texts)
        start = time.perf_counter()
        words = list(jieba.cut(blob))
        seconds = time.perf_counter() - start
    finally:
        jieba.disable_parallel()
    if "".join(words) != blob:
        raise RuntimeError("jieba parallel mode changed the text")
    return round(sum(map(len, texts)) / seconds)


TARGETS = {"fine PKU": 96.5, "coarse MSR": 96.0}  # the F1 targets for the unified model


def learning_curve(rows: list[dict], family: str, split_chars: dict[str, int]) -> str:
    """Notes on F1 against training characters for one model family (``unified-3L``, ``unified-3L-150k``,
    ...: same recipe, only ``--max-chars`` differs): the gain per doubling (least squares on log2 chars)
    and, extrapolated along that line, the characters the target would need, against the characters of
    each criterion's training split (``split_chars``: corpus -> chars). Empty when fewer than 3 sizes exist."""
    import math
    import re

    import numpy as np

    pattern = re.compile(rf"^{re.escape(family)}(-\d+k)? (fine PKU|coarse MSR)$")
    lines = []
    for part, target in TARGETS.items():
        points = sorted((r["train_chars"], r["f1"]) for r in rows
                        if (m := pattern.match(r["name"])) and m.group(2) == part and r.get("train_chars"))  # fmt: skip
        if len({c for c, _ in points}) < 3:
            continue
        slope = float(np.polyfit([math.log2(c) for c, _ in points], [f for _, f in points], 1)[0])
        best_chars, best = points[-1]
        corpus = part.split()[1]
        own = best_chars // 2  # a balanced sample: half the characters are of this criterion
        curve = ", ".join(f"{c / 1e3:,.0f} k: {f:.2f}" for c, f in points)
        if slope > 0:
            need = best_chars * 2 ** ((target - best) / slope)
            reach = (f"along the fitted line {target} needs ~{need / 1e6:,.1f} M training characters "
                     f"(~{need / 2 / split_chars[corpus]:,.0f}x the {split_chars[corpus]:,} characters of the {corpus} training split)")  # fmt: skip
        else:
            reach = "more characters did not help at all"
        (c0, f0), (c1, f1) = points[-2], points[-1]
        last = (f1 - f0) / math.log2(c1 / c0)  # the curve bends: the latest doubling says more than the fit
        lines.append(
            f"- {part} ({family}, `--max-chars` only): {curve} (train_chars: F1); {slope:+.2f} F1 per doubling "
            f"over all points, {last:+.2f} over the last one; {reach}. The largest run saw {own / 1e3:,.0f} k {corpus} characters"
            + (
                f", i.e. the {split_chars[corpus] / 1e3:,.0f} k of its training split {own / split_chars[corpus]:.1f} times over."
                if own > split_chars[corpus]
                else f" of the {split_chars[corpus] / 1e3:,.0f} k in its training split."
            )  # fmt: skip
        )
    if not lines:
        return ""
    by_name = {r["name"]: r for r in rows}
    for part in TARGETS:  # the deeper encoder against the curve, where it was trained
        deep = by_name.get(f"{family.replace('-3L', '-12L')} {part}")
        if deep and deep.get("train_chars"):
            lines.append(
                f"- {part}: the 12-layer encoder reached {deep['f1']:.2f} on {deep['train_chars'] / 1e3:,.0f} k characters."
            )
    return (
        "What limits F1: the learning curve (one recipe; only the training characters change, so each doubling "
        "shows what more data or more passes buy) and, extrapolated along it, what the targets would need.\n"
        + "\n".join(lines)
    )


@eval_app.command("segment")
def eval_segment(
    models: list[str] = typer.Option(
        None,
        "--model",
        help="Only these model dirs/names: their rows replace those of the same name in results/.",
    ),
    threads: int = typer.Option(2, help="torch / ONNX Runtime threads and jieba worker processes."),
    reuse: bool = typer.Option(True, help="Reuse cached test predictions newer than the model weights."),
    main_model: str = typer.Option(DEFAULT_MODEL, help="The model timed, exported to int8 and shown."),
    int8: bool = typer.Option(True, "--int8/--no-int8", help="Score and time the int8 ONNX Runtime model."),
    speed: bool = typer.Option(True, "--speed/--no-speed", help="Time jieba, PyTorch, ORT on PKU test."),
    examples: int = typer.Option(12, help="Sentences where fine and coarse differ, shown in the notes."),
) -> None:
    """The whole segmentation table in one run: every segment-* model on PKU test (fine) and MSR test
    (coarse) with the SIGHAN script, jieba on the same files, the int8 ONNX model, speed on the PKU test
    file, and fine-vs-coarse examples -> results/segmentation.json + docs/segmentation.md."""
    import os
    import tempfile

    import jieba
    import torch

    from luodi.data.cws import load_msr, load_pku1998, load_pku_test
    from luodi.paths import models_dir
    from luodi.results import merge_results, merged_rows
    from luodi.tasks.segment import Segmenter

    torch.set_num_threads(threads)
    jieba.setLogLevel(60)
    jieba.initialize()
    test = {"PKU": load_pku_test(), "MSR": load_msr("test")}
    texts = {c: ["".join(s) for s in gold] for c, gold in test.items()}
    gran_of = {"PKU": "fine", "MSR": "coarse"}
    names = models or sorted(p.name for p in models_dir().glob("segment-*") if (p / "luodi.json").exists())
    if not names:
        raise typer.BadParameter(f"no segment-* models in {models_dir()}: run `luodi train segment` first")
    main_dir = resolve_model_dir(main_model)
    rows, main_seg, main_info = [], {}, None

    def main_segmenter() -> Segmenter:
        if "seg" not in main_seg:
            main_seg["seg"] = Segmenter.load(main_dir)
        return main_seg["seg"]

    train_split = {"PKU": load_pku1998("train"), "MSR": load_msr("train")}  # paragraphs of words
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        # OOV = not a word of the training split actually available to the models (PKU 199801 train,
        # MSR lines 1-2,985), not SIGHAN's official training lists, which our MSR data does not come from
        words = {"PKU": tmp / "pku_words.utf8", "MSR": tmp / "msr_words.utf8"}
        for corpus, path in words.items():
            path.write_text("\n".join(sorted({w for p in train_split[corpus] for w in p})) + "\n")

        def score_rows(label: str, grans: list[str], predict, extra: dict) -> None:
            for corpus, gold in test.items():
                g = gran_of[corpus]
                if g in grans:
                    name = f"{label} {g} {corpus}" if len(grans) > 1 else f"{label} {corpus}"
                    rows.append({"name": name, **_score(gold, predict(corpus, g), words[corpus], tmp, corpus),
                                 **extra})  # fmt: skip
                    console.print(rows[-1])

        for name in names:
            model_dir = resolve_model_dir(name)
            if not (model_dir / "luodi.json").exists():
                raise typer.BadParameter(f"{model_dir} is not a saved model (no luodi.json)")
            config = json.loads((model_dir / "luodi.json").read_text())["config"]
            info_path = model_dir / "train_info.json"
            info = json.loads(info_path.read_text()) if info_path.exists() else {}
            state: dict = {}

            def load(model_dir=model_dir, state=state):
                if model_dir == main_dir:
                    return main_segmenter()
                if "seg" not in state:
                    state["seg"] = Segmenter.load(model_dir)
                return state["seg"]

            extra = {"layers": config["encoder"]["num_hidden_layers"],
                     "train_chars": info.get("chars_seen", info.get("chars", 0))}  # fmt: skip
            score_rows(model_dir.name.removeprefix("segment-"), config["granularities"],
                       lambda c, g, d=model_dir, ld=load: _predict_cached(d, ld, c, texts[c], g, reuse), extra)  # fmt: skip
            if model_dir == main_dir:
                main_info = (config, extra)
        if main_info is None:  # int8, PyTorch speed and the examples are about the main model only
            console.print(f"{main_dir.name} not evaluated: no int8 rows, PyTorch speed or examples")
        int8_seg = _int8_segmenter(main_dir, threads) if int8 and main_info else None
        if int8_seg is not None:
            config, extra = main_info
            score_rows(main_dir.name.removeprefix("segment-") + "-int8", config["granularities"],
                       lambda c, g: int8_seg(texts[c], granularity=g), extra)  # fmt: skip
        for corpus, gold in test.items():
            pred = [jieba.lcut(t) for t in texts[corpus]]
            rows.append({"name": f"jieba {corpus}", **_score(gold, pred, words[corpus], tmp, corpus)})
            console.print(rows[-1])

    pku = texts["PKU"]
    n_chars = sum(map(len, pku))
    label = main_dir.name.removeprefix("segment-")
    if speed:
        load_before = os.getloadavg()[0]
        timed = [  # (name, threads, chars/s measured on the PKU test texts)
            ("speed jieba PKU", 1, lambda t: _chars_per_s(lambda x: [jieba.lcut(y) for y in x], t)),
            ("speed jieba-parallel PKU", threads, lambda t: _jieba_parallel(t, threads)),
        ]
        if main_info is not None:
            timed.append((f"speed {label} pytorch fine PKU", threads,
                          lambda t: _chars_per_s(lambda x: main_segmenter()(x, granularity="fine"), t)))  # fmt: skip
        if int8_seg is not None:
            timed.append((f"speed {label}-int8 onnxruntime fine PKU", threads,
                          lambda t: _chars_per_s(lambda x: int8_seg(x, granularity="fine"), t)))  # fmt: skip
        flops = encoder_flops_per_token(main_info[0]["encoder"]) if main_info else 0
        for name, n_threads, measure in timed:
            rows.append({"name": name, "chars_per_s": measure(pku), "threads": n_threads})
            if flops and "jieba" not in name:  # one token per character: what the CPU sustained
                rows[-1]["gflops"] = round(rows[-1]["chars_per_s"] * flops / 1e9, 1)
            console.print(rows[-1])
        load_after = os.getloadavg()[0]
    sections = {
        "scoring": (
            "P/R/F1 and OOV recall from the official SIGHAN-2005 `score` script (`run_sighan_score`). PKU test = "
            "SIGHAN-2005 PKU gold (1,944 sentences, fine); MSR test = lines 3,486-3,985 of the MSR gold (500 "
            "sentences, coarse). OOV = gold words absent from the training split available to the models "
            "(PKU 199801 train paragraphs; MSR lines 1-2,985). `train_chars` = characters the model was trained "
            "on (a balanced PKU/MSR sample; the exact command is in `train_info.json` in each model dir). "
            "Decoding never splits an ASCII letter/digit run (full-width too) and treats whitespace as a word "
            "boundary. Single-criterion baselines are named without a granularity (`fine-only-3L PKU`)."
        )
    }
    sections["user dictionary"] = (
        "User dictionary (`Segmenter(...)(texts, user_dict=[...])`, `luodi segment --dict FILE`): its words "
        "are matched longest first, then leftmost, and forced whole before decoding (their characters "
        "constrained to B M..M E); the model decides the rest. When a dictionary word conflicts with the model "
        "(the model would cut inside it or across its edges), the dictionary wins; it also wins over the rule "
        "that never splits an ASCII letter/digit run, and a match that spans whitespace is ignored. The "
        "assistant uses it to keep gazetteer singers whole at the fine granularity (PKU splits 周 / 杰伦)."
    )
    if int8_seg is not None:
        sections["int8"] = (
            f"`{label}-int8`: the same model through ONNX Runtime (`luodi.deploy.release.export_release`: "
            "character vocabulary trimmed to the training characters, ORT BERT fusion, dynamic int8), same "
            "windowing and constrained Viterbi."
        )
    if speed:
        sections["speed"] = (
            f"Speed: characters/second over the whole PKU test file ({n_chars:,} chars, {len(pku):,} lines), "
            "end to end (windowing, batches of 64 windows sorted by length, model, constrained Viterbi), "
            f"{threads} threads for PyTorch and ONNX Runtime; jieba in one process (`lcut` per line) and in "
            f"its parallel mode with {threads} worker processes (`enable_parallel`, process start-up "
            f"included). The CPU is shared: 1-minute load average {load_before:.1f} before and "
            f"{load_after:.1f} after the timings, on {os.cpu_count()} cores."
            + (
                f" `gflops` = chars/s x {flops / 1e6:.1f} M floating-point operations per character "
                f"(`encoder_flops_per_token`: the {label} encoder's matrix products only, a lower bound), "
                "i.e. the compute the CPU sustained: 50 k chars/s with this encoder needs at least "
                f"{50_000 * flops / 1e9:.0f} GFLOP/s."
                if flops
                else ""
            )
        )
    if examples and main_info is not None:
        seg = main_segmenter()
        pool = [t for t in texts["MSR"] if 8 <= len(t) <= 40][:200]
        fine, coarse = seg(pool, granularity="fine"), seg(pool, granularity="coarse")
        shown = [(f, c) for f, c in zip(fine, coarse, strict=True) if f != c][:examples]
        sections["examples"] = (
            f"MSR test sentences where `{label}` segments differently at fine and coarse:\n\n"
            + "\n".join(f"- fine: {' / '.join(f)}<br>coarse: {' / '.join(c)}" for f, c in shown)
        )
    split_chars = {c: sum(len(w) for p in paragraphs for w in p) for c, paragraphs in train_split.items()}
    curve = learning_curve(merged_rows("segmentation", rows, fresh=not models), "unified-3L", split_chars)
    if curve:
        sections["learning curve"] = curve
    # --model: only these rows are replaced (a fresh model cache need not retrain every model of the table)
    js, md = merge_results("segmentation", rows, sections, fresh=not models)
    console.print(f"wrote {js} and {md}")
