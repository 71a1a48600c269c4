"""``luodi eval matcher``: pair accuracy, retrieval, reranking and search latency of the matchers
(results/matching.json)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app
from luodi.commands.match import _default_dir

MODELS = ("zero-shot-12L", "bi-encoder-12L", "cross-encoder-12L", "zero-shot-3L", "bi-encoder-3L",
          "bi-encoder-3L-int8", "bi-encoder-3L-fp16", "student-3L", "student-3L-int8",
          "student-3L-fp16", "student-6L", "student-6L-int8", "student-6L-fp16")  # fmt: skip


SETS = {"lcqmc": "LCQMC test", "pawsx": "PAWS-X dev", "oppo": "OPPO held-out"}


# a trained bi-encoder row: family, layers, recipe tags (dir suffix), ONNX variant; e.g. student-3L-ta-int8
_TRAINED = re.compile(r"(bi-encoder|student)-(\d+)L((?:-(?!(?:int8|fp16)$)[a-z0-9]+)*)(?:-(int8|fp16))?")


def _trained(name: str) -> tuple[Path, str | None] | None:
    """``"student-3L-ta-int8"`` -> (<models>/match-student-3L-ta, "int8"); None if not a trained bi-encoder."""
    m = _TRAINED.fullmatch(name)
    if m is None:
        return None
    return _default_dir("bi" if m[1] == "bi-encoder" else "student", int(m[2]), m[3][1:]), m[4]


def _scorer(name: str, threads: int):
    """The model behind a row name: a Matcher (bi-encoders, PyTorch or ONNX) or a Reranker."""
    from luodi.encoders import load_tokenizer
    from luodi.tasks.match import Matcher, Reranker

    if name.startswith("zero-shot-"):
        return Matcher.pretrained(layers=int(name.split("-")[-1].rstrip("L")))
    if name == "cross-encoder-12L":
        return Reranker.load(_default_dir("cross", 12))
    trained = _trained(name)
    if trained is None:
        raise typer.BadParameter(
            f"unknown model {name!r}: choose from {', '.join(MODELS)} (or a tagged dir, e.g. student-3L-ta)"
        )
    src, variant = trained
    if not src.is_dir():
        raise typer.BadParameter(f"model {name!r}: {src} is not trained (luodi train matcher --output-dir)")
    if variant is None:
        return Matcher.load(src)
    return Matcher.from_onnx(_onnx_variant(src, variant), load_tokenizer(model_dir=src),
                             threads=threads)  # fmt: skip


def _onnx_variant(model_dir: Path, variant: str) -> Path:
    """Export the bi-encoder's encoder (output last_hidden_state), fuse (counts asserted), then int8 or
    fp16 with luodi.deploy; cached beside the model."""
    from luodi.deploy import export_onnx, optimize
    from luodi.modeling import load_model

    out = model_dir / "onnx"
    final = out / f"{variant}.onnx"
    if final.exists():
        return final
    model = load_model(model_dir)
    layers = model.encoder.config.num_hidden_layers
    export_onnx(model.encoder, out / "encoder.onnx")
    preset = "int8-avx2" if variant == "int8" else "fp16"
    return optimize(out / "encoder.onnx", out, preset, layers=layers).path


def _per_set(value: str, option: str) -> dict[str, int]:
    """``"2000"`` (every set) or ``"lcqmc=2000,pawsx=1000"`` (unnamed sets: 0 = all) -> {set key: cap}."""
    try:
        if "=" not in value:
            return dict.fromkeys(SETS, int(value or 0))
        caps = dict.fromkeys(SETS, 0)
        for part in value.split(","):
            key, _, n = part.partition("=")
            if key not in SETS:
                raise ValueError(f"unknown set {key!r}")
            caps[key] = int(n)
        return caps
    except ValueError as err:
        raise typer.BadParameter(
            f"{option} {value!r}: expected N or set=N,... with sets {', '.join(SETS)} ({err})"
        ) from None


def _pair_rows(name: str, scorer, sets: list[str], max_pairs: dict[str, int],
               max_dev_pairs: int) -> tuple[list, dict]:  # fmt: skip
    """Accuracy/F1 rows for one model; also returns {set: (pairs, scores)} for retrieval reuse."""
    import numpy as np

    from luodi.tasks.match import best_threshold, eval_sets, pair_metrics, score_pairs

    rows, scored = [], {}
    all_sets = eval_sets()
    for key in sets:
        test, dev = all_sets[SETS[key]]
        test = test[: max_pairs[key]] if max_pairs[key] else test
        labels = np.array([p.label for p in test])
        if dev is not None:
            dev = dev[:max_dev_pairs] if max_dev_pairs else dev
            t, _ = best_threshold(score_pairs(scorer, dev), [p.label for p in dev])
            scores = score_pairs(scorer, test)
            m = pair_metrics(scores, labels, t)
            how, threshold = f"{len(dev)} held-out in-domain dev pairs", round(t, 4)
        else:  # no in-domain dev exists: 2-fold, each half's threshold chosen on the other half
            scores = score_pairs(scorer, test)
            pred = np.zeros(len(test), bool)
            for fold in (0, 1):
                fit, apply = np.arange(len(test)) % 2 != fold, np.arange(len(test)) % 2 == fold
                t, _ = best_threshold(scores[fit], labels[fit])
                pred[apply] = scores[apply] >= t
            m = pair_metrics(pred.astype(float), labels, 0.5)
            how, threshold = "2-fold on the set itself", None
        row = {"name": f"{name} {SETS[key]}", "accuracy": round(m["accuracy"], 2), "f1": round(m["f1"], 2),
               "pairs": len(test), "threshold": threshold, "threshold_from": how}  # fmt: skip
        rows.append(row)
        scored[key] = (test, scores)
        console.print(row)
    return rows, scored


def _retrieval_task(matcher, pairs):
    """Held-out LCQMC positives as retrieval: index every distinct second question of the pairs (the
    negatives' second questions are distractors), query with each positive's first question.
    Returns (index, queries, gold partners per query, questions)."""
    from luodi.tasks.match import FaqIndex

    questions = sorted({p.b for p in pairs})
    gold: dict[str, set[str]] = {}
    for p in pairs:
        if p.label == 1:
            gold.setdefault(p.a, set()).add(p.b)
    index = FaqIndex.build([(q, "") for q in questions], matcher, threshold=-1.0)
    return index, sorted(gold), gold, questions


def _retrieval_row(name: str, matcher, pairs) -> dict:
    index, queries, gold, questions = _retrieval_task(matcher, pairs)
    hits = index.search_batch(queries, k=5)
    r1 = sum(bool(h) and h[0].question in gold[q] for q, h in zip(queries, hits, strict=True))
    r5 = sum(any(x.question in gold[q] for x in h) for q, h in zip(queries, hits, strict=True))
    n = len(queries)
    return {"name": f"{name} LCQMC retrieval", "recall_at_1": round(100 * r1 / n, 2),
            "recall_at_5": round(100 * r5 / n, 2), "queries": n, "questions": len(questions)}  # fmt: skip


def _rerank_row(matcher, reranker, pairs, k: int = 5) -> dict:
    index, queries, gold, questions = _retrieval_task(matcher, pairs)
    r1 = 0
    for q, hits in zip(queries, index.search_batch(queries, k=k), strict=True):
        top = reranker.rerank(q, hits)
        r1 += bool(top) and top[0].question in gold[q]
    return {"name": f"bi-encoder-12L + cross-encoder-12L top-{k} rerank LCQMC retrieval",
            "recall_at_1": round(100 * r1 / len(queries), 2), "queries": len(queries),
            "questions": len(questions)}  # fmt: skip


def _latency_rows(sizes: list[int], max_queries: int = 200, threads: int = 2) -> list[dict]:
    """Search latency (one query at a time, vectors only) on random normalised vectors: numpy exact vs
    the faiss IVF index FaqIndex uses above its size threshold; recall@1 of ANN vs the exact answer."""

    import faiss
    import numpy as np

    from luodi.tasks.match import FaqIndex

    faiss.omp_set_num_threads(threads)
    rows = []
    rng = np.random.default_rng(0)
    for n in sizes:
        queries = max_queries if n <= 100_000 else max_queries // 4  # a 1 M scan reads 1.5 GB per query
        vecs = rng.standard_normal((n, 384), dtype=np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        # queries near stored vectors, like a paraphrase near its stored question (cosine ~0.9)
        q = vecs[rng.choice(n, queries, replace=False)] + 0.02 * rng.standard_normal(
            (queries, 384), np.float32
        )
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        exact_ids = None
        for mode in ("numpy", "faiss-ivf"):
            index = FaqIndex(None, 384, ann_min_size=0 if mode != "numpy" else n + 1)
            index.questions = [""] * n  # len() only: the vectors are what is searched
            index.vectors = vecs
            start = time.perf_counter()
            if mode != "numpy":
                index._ann_index()
            build = time.perf_counter() - start
            times, ids = [], []
            for i in range(queries):
                t0 = time.perf_counter()
                _, top = index.search_vectors(q[i : i + 1], k=5)
                times.append(1000 * (time.perf_counter() - t0))
                ids.append(top[0, 0])
            ids = np.array(ids)
            if mode == "numpy":
                exact_ids = ids
            row = {"name": f"search {mode} {n:,} questions", "queries": queries,
                   "p50_ms": round(float(np.median(times)), 3),
                   "p95_ms": round(float(np.percentile(times, 95)), 3),
                   "recall_at_1_vs_exact": round(100 * float((ids == exact_ids).mean()), 2),
                   "build_s": round(build, 2), "threads": 1 if mode == "numpy" else threads,
                   "load_avg": round(os.getloadavg()[0], 1)}  # fmt: skip
            rows.append(row)
            console.print(row)
            del index
    return rows


def _encode_latency_row(name: str, matcher, texts: list[str], threads: int) -> dict:

    import numpy as np

    times = []
    for t in texts:
        t0 = time.perf_counter()
        matcher.encode([t])
        times.append(1000 * (time.perf_counter() - t0))
    return {"name": f"encode one query {name}", "p50_ms": round(float(np.median(times)), 3),
            "p95_ms": round(float(np.percentile(times, 95)), 3), "threads": threads,
            "load_avg": round(os.getloadavg()[0], 1)}  # fmt: skip


def _training_lines() -> dict[str, str]:
    """``{"bi-12L": "- `luodi train matcher ...`: ..."}`` for every matcher trained in this models dir."""
    import json

    from luodi.paths import models_dir

    lines = {}
    for meta_path in sorted(models_dir().glob("match-*/matcher.json")):
        key = meta_path.parent.name.removeprefix("match-")
        parsed = re.fullmatch(r"(bi|cross|student)-(\d+)L(-[a-z0-9-]+)?", key)
        if parsed is None:
            continue
        kind, layers, tag = parsed[1], int(parsed[2]), (parsed[3] or "")[1:]
        m = json.loads(meta_path.read_text())
        opts = f" --epochs {m['epochs']:g}" if "epochs" in m else ""
        opts += f" --threads {m['threads']}" if "threads" in m else ""
        opts += f" --head-scale {m['head_scale']:g}" if "head_scale" in m else ""
        if kind == "student":
            opts += f" --embed-weight {m['embed_weight']:g} --score-weight {m['score_weight']:g}"
            opts += f" --silver-pairs {m['silver_pairs']}" if "silver_pairs" in m else ""
            opts += f" --silver-per-text {m['silver_per_text']}" if m.get("silver_per_text", 1) > 1 else ""
            opts += f" --augment {m['augment']}" if m.get("augment") else ""
            if m.get("domain_texts"):  # the first N of the same seeded list: N reproduces the run
                opts += f" --domain-texts assistant --max-domain-texts {m['domain_texts']}"
            teacher = Path(m["teacher"]).name
            if m["teacher"].startswith("pretrained:"):  # zero-shot e5, not a directory
                opts += f" --teacher {m['teacher']}"
            elif teacher != "match-bi-12L":
                opts += f" --teacher <models>/{teacher}"
        if tag:
            opts += f" --output-dir <models>/{meta_path.parent.name}"
        extra = (
            f"; teacher embeddings of {m['teacher_texts']:,} texts cached in {m['teacher_cache_seconds']:.0f} s"
            if kind == "student"
            else ""
        )
        if "dev_history" in m:
            extra += f"; dev accuracy by epoch {' / '.join(f'{a:.1f}' for a in m['dev_history'])}"
        silver = m.get("silver_pairs", 0)  # train_pairs counts them; --max-pairs does not
        edited = m.get("augmented_pairs", 0)  # nor these
        domain = m.get("domain_pairs", 0)  # nor the unlabelled domain pairs
        lines[key] = (
            f"- `luodi train matcher --kind {kind} --layers {layers} "
            f"--max-pairs {m['train_pairs'] - silver - edited - domain} "
            f"--learning-rate {m['learning_rate']:g}{opts}`: {m['train_pairs']:,} pairs (LCQMC dev first"
            + (f"; {silver:,} silver, {m['silver_positive']:g} % positive" if silver else "")
            + (f"; {edited:,} edited copies, {m['augmented_positive']:g} % positive" if edited else "")
            + (f"; {domain:,} unlabelled pairs of {m['domain_texts']:,} domain texts" if domain else "")
            + "), "
            f"{m['steps']} steps, {m['train_seconds'] / 60:.1f} min on the shared CPU{extra}"
        )
    return lines


def _merge_write(new_rows: list[dict], fresh: bool = False) -> None:
    """Merge rows into results/matching.json (``luodi.results.merge_results``: parts run separately on a
    busy machine); the training line of every model behind a row is kept, even when that model is no
    longer in this models dir (a fresh cache, another machine)."""
    import json

    from luodi.paths import results_dir
    from luodi.results import merge_results

    path = results_dir() / "matching.json"
    old = json.loads(path.read_text()) if path.exists() and not fresh else {}
    training = {**old.get("training", {}), **_training_lines()}
    js, md = merge_results("matching", new_rows, fresh=fresh, extra={"training": training})
    console.print(f"wrote {js}" + (f" and {md}" if md else ""))


@eval_app.command("matcher")
def eval_matcher(
    models: str = typer.Option(",".join(MODELS), help="Comma-separated rows to compute."),
    sets: str = typer.Option("lcqmc,pawsx,oppo", help="Comma-separated: lcqmc, pawsx, oppo."),
    max_pairs: str = typer.Option(
        "0",
        help="Score only the first N test pairs: N for every set or e.g. lcqmc=2000,pawsx=1000 (0 = all).",
    ),
    max_dev_pairs: int = typer.Option(0, help="Threshold-dev pairs (0 = all 2,000 / 1,000)."),
    retrieval: bool = typer.Option(True, help="recall@1/5 rows for bi-encoders (needs lcqmc in --sets)."),
    rerank: bool = typer.Option(False, help="Cross-encoder top-5 rerank row (bi-encoder-12L + cross-12L)."),
    latency: str = typer.Option(
        "", help="Comma-separated sizes for the search latency rows, e.g. 10000,1000000."
    ),
    threads: int = typer.Option(1, help="Threads for accuracy runs (the machine is shared)."),
    fresh: bool = typer.Option(False, help="Start results/matching.json afresh instead of merging rows."),
    write: bool = typer.Option(False, help="Merge the rows into results/matching.json (+ docs/matching.md)."),
) -> None:
    """Matching accuracy/F1, retrieval recall and search latency; with --write into results/matching.json."""
    import torch

    torch.set_num_threads(threads)
    caps = _per_set(max_pairs, "--max-pairs")
    rows: list[dict] = []
    set_keys = [s for s in sets.split(",") if s]
    lcqmc_scored = {}
    for name in [m for m in models.split(",") if m]:
        scorer = _scorer(name, threads)
        new, scored = _pair_rows(name, scorer, set_keys, caps, max_dev_pairs)
        rows += new
        if "lcqmc" in scored:
            lcqmc_scored[name] = (scorer, scored["lcqmc"][0])
        if retrieval and "lcqmc" in scored and not name.startswith("cross"):
            rows.append(_retrieval_row(name, scorer, scored["lcqmc"][0]))
            console.print(rows[-1])
    by_name = {r["name"]: r for r in rows}
    for name in models.split(","):  # an int8/fp16 row's loss against its fp32 model scored in this run
        variant = (_trained(name) or (None, None))[1]
        for key in set_keys if variant else ():
            ref = by_name.get(f"{name.removesuffix('-' + variant)} {SETS[key]}")
            cand = by_name.get(f"{name} {SETS[key]}")
            if ref and cand:
                cand["accuracy_loss"] = round(ref["accuracy"] - cand["accuracy"], 2)
    if rerank:
        from luodi.tasks.match import eval_sets

        bi = lcqmc_scored.get("bi-encoder-12L")
        if bi is None:  # not scored in this run: the same pairs as the retrieval rows
            test = eval_sets()["LCQMC test"][0]
            bi = (_scorer("bi-encoder-12L", threads), test[: caps["lcqmc"]] if caps["lcqmc"] else test)
        rows.append(_rerank_row(bi[0], _scorer("cross-encoder-12L", threads), bi[1]))
        console.print(rows[-1])
    if latency:
        sizes = [int(s) for s in latency.split(",")]
        rows += _latency_rows(sizes, threads=2)
        torch.set_num_threads(2)
        from luodi.data.similarity import load_pairs

        texts = [p.a for p in load_pairs("lcqmc_test")[:100]]
        for name, model_dir in (
            ("student-3L-int8", _default_dir("student", 3)),
            ("bi-encoder-12L", _default_dir("bi", 12)),
        ):
            if not model_dir.is_dir():  # the search rows need no model; keep them
                console.print(f"skipped 'encode one query {name}': {model_dir} not trained")
                continue
            rows.append(_encode_latency_row(name, _scorer(name, 2), texts, 2))
            console.print(rows[-1])
    if write:
        _merge_write(rows, fresh=fresh)
