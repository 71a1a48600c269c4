"""``luodi eval encoder``: sizes of the teacher and students and the char-alignment fallback rate on PKU
(results/encoder.json)."""

from __future__ import annotations

from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app


@eval_app.command("encoder")
def eval_encoder(
    max_paragraphs: int = typer.Option(0, help="Limit PKU paragraphs for the fallback rate (0 = all)."),
    write: bool = typer.Option(False, help="Write results/encoder.json (+ docs/encoder.md in a checkout)."),
) -> None:
    """Sizes of the teacher and students (params, MB on disk) and the char-alignment fallback rate on PKU."""
    import tempfile

    from safetensors.torch import save_model

    from luodi.data.cws import load_pku1998
    from luodi.encoders import CharAligner, count_parameters, load_encoder, load_tokenizer
    from luodi.results import write_results

    rows = []
    for name, layers, vocab in [
        ("e5-small-12L full-vocab", 12, "full"),
        ("e5-small-12L zh-vocab", 12, "zh"),
        ("e5-small-6L zh-vocab", 6, "zh"),
        ("e5-small-3L zh-vocab", 3, "zh"),
    ]:
        model = load_encoder(layers=layers, vocab=vocab)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.safetensors"
            save_model(model, str(path))
            size_mb = path.stat().st_size / 1e6
        rows.append({"name": name, "layers": layers, "vocab": model.config.vocab_size,
                     "params_m": round(count_parameters(model) / 1e6, 2), "size_mb": round(size_mb, 1)})  # fmt: skip
        del model
    aligner = CharAligner(load_tokenizer("zh"))
    paragraphs = load_pku1998("all")
    if max_paragraphs:
        paragraphs = paragraphs[:max_paragraphs]
    texts = ["".join(words) for words in paragraphs]
    fallback, total = aligner.fallback_rate(texts)
    unknown = sorted(
        {ch for t in texts for ch in t if not ch.isspace() and aligner.char_id(ch) == aligner.unk_id}
    )
    rows.append({"name": "char-aligned fallback PKU 199801", "chars": total, "fallbacks": fallback,
                 "fallback_rate": round(100 * fallback / total, 4)})  # fmt: skip
    for r in rows:
        console.print(r)
    if write:
        js, md = write_results("encoder", rows, extra={"facts": {"unknown_chars": "".join(unknown)}})
        console.print(f"wrote {js}" + (f" and {md}" if md else ""))
