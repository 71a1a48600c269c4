"""Which int8 nodes cost a char-aligned release model its gate metrics? Export and fuse once, then quantise
with one group of nodes kept in fp32 at a time and score each copy as ``luodi release`` gates it:

    python -m bench.quant_sweep --source <models>/intent-fused-assistant-3L-app \
        --keep 'layer.0/output/dense' --keep 'layer.1/output/dense' --keep '/model/(fusion|.*_head)' --write

Every variant is the release's own pipeline (``luodi.deploy.release``: vocabulary trimmed to
``release_chars``, exported, fused, dynamic int8 with ``luodi.deploy.optimize.quantize_int8``) with the
nodes whose names match the ``--keep`` regular expression left unquantised; ``all int8`` is what the release
ships. Rows (results/quant_sweep.json): ``<source> <variant>, first <limit>`` (or ``full test``) with the
task's gate metrics (for intent: ``intent_accuracy``, ``slot_f1``), their deltas against PyTorch measured in
the same run, ``nodes_fp32`` (the graph nodes the pattern matches, of any op type: only MatMul / Gemm /
Gather / Attention are ever quantised) and the artifact's ``size_mb``.

Why: a 1-point gate on 500 test queries refuses some retrained intent models on slot F1 and passes others
(+0.27 for the shipped one); the FFN down-projection's GELU outliers are the known culprit for the encoder
(``quantize_int8``'s docstring), and keeping all three layers' fp32 costs 5.3 MB the 60 MB budget lacks.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path


def sweep(source: Path, kind: str, keeps: list[str], limit: int, threads: int) -> list[dict]:
    """Rows for ``source`` (a trained model directory), scored by its task's release evaluation."""
    from luodi.deploy.trim import release_chars
    from luodi.encoders import load_tokenizer
    from luodi.modeling import load_model
    from luodi.runtime.tasks import load_release
    from luodi.tasks.spec import lookup

    spec = lookup(kind)
    reference = spec.evaluate(spec.load(source, threads, {}), limit)
    lexicons = source / "lexicons" if (source / "lexicons").is_dir() else None
    scope = f"first {limit}" if limit else "full test"
    rows = [{"name": f"{source.name} pytorch, {scope}", **_rounded(reference)}]
    variants = quantised_variants(
        load_model(source), load_tokenizer(model_dir=source), release_chars(), keeps,
        lambda out: spec.evaluate(load_release(spec.name, out, threads), limit), lexicons,
    )  # fmt: skip
    for variant, metrics, nodes, size in variants:
        rows.append({
            "name": f"{source.name} {variant}, {scope}", **_rounded(metrics),
            **{f"{k}_delta": round(metrics[k] - reference[k], 2) for k in metrics},
            "nodes_fp32": nodes, "size_mb": size,
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def quantised_variants(model, tokenizer, chars, keeps: list[str], evaluate, lexicons: Path | None = None):
    """[(variant, evaluate(release_dir), nodes kept fp32, model.onnx MB)]: ``all int8`` first, then one
    variant per ``keeps`` pattern. ``model`` is trimmed in place (pass a copy you can lose)."""
    import onnx

    from luodi.deploy.optimize import fuse, quantize_int8
    from luodi.deploy.release import export_task, write_release_files
    from luodi.deploy.trim import trim_char_vocabulary
    from luodi.runtime.tasks import MODEL_FILE

    vocab = trim_char_vocabulary(model, tokenizer, chars)
    out_rows = []
    with tempfile.TemporaryDirectory(prefix="quant-sweep-") as tmp:
        work = Path(tmp)
        cfg = model.encoder.config
        export_task(model, work / "model.onnx")
        fuse(work / "model.onnx", work / "fused.onnx", cfg.num_attention_heads, cfg.hidden_size)
        names = [n.name for n in onnx.load(str(work / "fused.onnx")).graph.node]
        for i, pattern in enumerate([None, *keeps]):
            keep = [n for n in names if pattern is not None and re.search(pattern, n)]
            if pattern is not None and not keep:
                raise ValueError(f"--keep {pattern!r} matches no node of the fused graph")
            out = work / f"v{i}"
            out.mkdir()
            quantize_int8(work / "fused.onnx", out / MODEL_FILE, keep_ffn_output_fp32=False, keep_fp32=keep)
            write_release_files(model, vocab, out, lexicons)
            variant = "all int8" if pattern is None else f"fp32 {pattern}"
            size = round((out / MODEL_FILE).stat().st_size / 1e6, 2)
            out_rows.append((variant, evaluate(out), len(keep), size))
    return out_rows


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in metrics.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", type=Path, required=True, help="A trained model directory.")
    ap.add_argument("--kind", default="intent", help="Its release task (default: intent).")
    ap.add_argument("--keep", action="append", default=[], help="Regex of node names kept fp32 (repeat).")
    ap.add_argument("--limit", type=int, default=500, help="Test items, as `luodi release --limit`.")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="Merge the rows into results/quant_sweep.json.")
    args = ap.parse_args(argv)
    rows = sweep(args.source, args.kind, args.keep, args.limit, args.threads)
    if args.write:
        from luodi.results import merge_results

        js, md = merge_results("quant_sweep", rows)
        print(f"wrote {js}" + (f" and {md}" if md else ""))


if __name__ == "__main__":
    main()
