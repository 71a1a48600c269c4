"""``luodi eval segment``: every segment-* model on PKU test (fine) and MSR test (coarse) with the SIGHAN
script, jieba on the same files, the int8 ONNX model, speed, fine-vs-coarse examples
(results/segmentation.json)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from luodi.commands._apps import console, eval_app
from luodi.commands.segment import DEFAULT_MODEL
from luodi.paths import resolve_model_dir


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
    return load_release("segmenter", out, threads)


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
    write: bool = typer.Option(False, help="Merge the rows into results/segmentation.json (+ the doc)."),
) -> None:
    """The whole segmentation table in one run: every segment-* model on PKU test (fine) and MSR test
    (coarse) with the SIGHAN script, jieba on the same files, the int8 ONNX model, speed on the PKU test
    file, and fine-vs-coarse examples; with --write into results/segmentation.json."""
    import jieba
    import torch

    from luodi.data.cws import load_msr, load_pku1998, load_pku_test
    from luodi.paths import models_dir
    from luodi.results import merge_results

    torch.set_num_threads(threads)
    jieba.setLogLevel(60)
    jieba.initialize()
    test = {"PKU": load_pku_test(), "MSR": load_msr("test")}
    names = models or sorted(p.name for p in models_dir().glob("segment-*") if (p / "luodi.json").exists())
    if not names:
        raise typer.BadParameter(f"no segment-* models in {models_dir()}: run `luodi train segment` first")
    train_split = {"PKU": load_pku1998("train"), "MSR": load_msr("train")}  # paragraphs of words
    run = _Run(test, resolve_model_dir(main_model), threads, reuse)
    rows = run.test_rows(names, train_split, int8)
    label = run.main_dir.name.removeprefix("segment-")
    facts = {"main": label, "int8": run.int8_seg is not None,
             "split_chars": {c: sum(len(w) for p in ps for w in p) for c, ps in train_split.items()}}  # fmt: skip
    if speed:
        speed_rows, facts["speed"] = run.speed_rows()
        rows += speed_rows
    sections = {}
    if examples and run.main_info is not None:
        sections["examples"] = run.examples(examples)
    if write:  # --model: only these rows are replaced (a fresh model cache need not retrain every model)
        js, md = merge_results("segmentation", rows, sections, fresh=not models, extra={"facts": facts})
        console.print(f"wrote {js}" + (f" and {md}" if md else ""))


class _Run:
    """One evaluation: the test sets, the main model (timed, exported to int8, shown) and its int8 copy."""

    def __init__(self, test: dict, main_dir: Path, threads: int, reuse: bool) -> None:
        self.test, self.main_dir, self.threads, self.reuse = test, main_dir, threads, reuse
        self.texts = {c: ["".join(s) for s in gold] for c, gold in test.items()}
        self.main_info, self.int8_seg, self._main = None, None, None

    def main_segmenter(self):
        from luodi.tasks.segment import Segmenter

        if self._main is None:
            self._main = Segmenter.load(self.main_dir)
        return self._main

    def test_rows(self, names: list[str], train_split: dict, int8: bool) -> list[dict]:
        """SIGHAN scores of every model, the main model's int8 copy and jieba on both test sets."""
        import tempfile

        import jieba

        rows: list[dict] = []
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            # OOV = not a word of the training split actually available to the models (PKU 199801 train,
            # MSR lines 1-2,985), not SIGHAN's official training lists, which our MSR data does not come from
            words = {"PKU": tmp / "pku_words.utf8", "MSR": tmp / "msr_words.utf8"}
            for corpus, path in words.items():
                path.write_text("\n".join(sorted({w for p in train_split[corpus] for w in p})) + "\n")
            score = lambda label, grans, predict, extra: rows.extend(  # noqa: E731
                self._score_rows(label, grans, predict, extra, words, tmp)
            )
            for name in names:
                self._model_rows(resolve_model_dir(name), score)
            if self.main_info is None:  # int8, PyTorch speed and the examples are about the main model only
                console.print(f"{self.main_dir.name} not evaluated: no int8 rows, PyTorch speed or examples")
            self.int8_seg = _int8_segmenter(self.main_dir, self.threads) if int8 and self.main_info else None
            if self.int8_seg is not None:
                config, extra = self.main_info
                score(self.main_dir.name.removeprefix("segment-") + "-int8", config["granularities"],
                      lambda c, g: self.int8_seg(self.texts[c], granularity=g), extra)  # fmt: skip
            for corpus, gold in self.test.items():
                pred = [jieba.lcut(t) for t in self.texts[corpus]]
                rows.append({"name": f"jieba {corpus}", **_score(gold, pred, words[corpus], tmp, corpus)})
                console.print(rows[-1])
        return rows

    def _score_rows(self, label, grans, predict, extra, words, tmp) -> list[dict]:
        rows = []
        for corpus, gold in self.test.items():
            g = {"PKU": "fine", "MSR": "coarse"}[corpus]
            if g in grans:
                name = f"{label} {g} {corpus}" if len(grans) > 1 else f"{label} {corpus}"
                rows.append(
                    {"name": name, **_score(gold, predict(corpus, g), words[corpus], tmp, corpus), **extra}
                )
                console.print(rows[-1])
        return rows

    def _model_rows(self, model_dir: Path, score) -> None:
        from luodi.tasks.segment import Segmenter

        if not (model_dir / "luodi.json").exists():
            raise typer.BadParameter(f"{model_dir} is not a saved model (no luodi.json)")
        config = json.loads((model_dir / "luodi.json").read_text())["config"]
        info_path = model_dir / "train_info.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        state: dict = {}

        def load():
            if model_dir == self.main_dir:
                return self.main_segmenter()
            if "seg" not in state:
                state["seg"] = Segmenter.load(model_dir)
            return state["seg"]

        extra = {"layers": config["encoder"]["num_hidden_layers"],
                 "train_chars": info.get("chars_seen", info.get("chars", 0))}  # fmt: skip
        score(model_dir.name.removeprefix("segment-"), config["granularities"],
              lambda c, g: _predict_cached(model_dir, load, c, self.texts[c], g, self.reuse), extra)  # fmt: skip
        if model_dir == self.main_dir:
            self.main_info = (config, extra)

    def speed_rows(self) -> tuple[list[dict], dict]:
        """chars/s of jieba (one process and its parallel mode), PyTorch and int8 ORT on the PKU test file,
        and the conditions of the timing (size, threads, load, FLOPs per character)."""
        import os

        import jieba

        pku, threads = self.texts["PKU"], self.threads
        label = self.main_dir.name.removeprefix("segment-")
        load_before = os.getloadavg()[0]
        timed = [  # (name, threads, chars/s measured on the PKU test texts)
            ("speed jieba PKU", 1, lambda t: _chars_per_s(lambda x: [jieba.lcut(y) for y in x], t)),
            ("speed jieba-parallel PKU", threads, lambda t: _jieba_parallel(t, threads)),
        ]
        if self.main_info is not None:
            timed.append((f"speed {label} pytorch fine PKU", threads,
                          lambda t: _chars_per_s(lambda x: self.main_segmenter()(x, granularity="fine"), t)))  # fmt: skip
        if self.int8_seg is not None:
            timed.append((f"speed {label}-int8 onnxruntime fine PKU", threads,
                          lambda t: _chars_per_s(lambda x: self.int8_seg(x, granularity="fine"), t)))  # fmt: skip
        flops = encoder_flops_per_token(self.main_info[0]["encoder"]) if self.main_info else 0
        rows = []
        for name, n_threads, measure in timed:
            rows.append({"name": name, "chars_per_s": measure(pku), "threads": n_threads})
            if flops and "jieba" not in name:  # one token per character: what the CPU sustained
                rows[-1]["gflops"] = round(rows[-1]["chars_per_s"] * flops / 1e9, 1)
            console.print(rows[-1])
        facts = {"chars": sum(map(len, pku)), "lines": len(pku), "threads": threads,
                 "load_before": round(load_before, 1), "load_after": round(os.getloadavg()[0], 1),
                 "flops_per_char": flops}  # fmt: skip
        return rows, facts

    def examples(self, n: int) -> str:
        """Markdown: MSR test sentences the main model segments differently at fine and coarse."""
        seg = self.main_segmenter()
        pool = [t for t in self.texts["MSR"] if 8 <= len(t) <= 40][:200]
        fine, coarse = seg(pool, granularity="fine"), seg(pool, granularity="coarse")
        shown = [(f, c) for f, c in zip(fine, coarse, strict=True) if f != c][:n]
        label = self.main_dir.name.removeprefix("segment-")
        return f"MSR test sentences where `{label}` segments differently at fine and coarse:\n\n" + "\n".join(
            f"- fine: {' / '.join(f)}<br>coarse: {' / '.join(c)}" for f, c in shown
        )
