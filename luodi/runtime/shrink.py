"""A smaller segmenter release: drop the rows of rare bigrams from the int8 bigram embedding table.

    python -m luodi.runtime.shrink release/segmenter --min-count 5 --out /tmp/segmenter-small

Why: the bigram table (``model.bigram.weight_quantized``, one int8 row of ``bigram_dim`` per bigram
counted >= 2 times in the training sample, ``luodi.tasks.segment.build_bigram_vocab``) is half of the
segmenter's ONNX file, and its vocabulary is most of ``luodi.json``. Counts are ``build_bigram_vocab``'s:
a bigram inside a text counts twice (right bigram of one character, left of the next), so the shipped
vocabulary holds every bigram that occurs once, and ``min_count`` 3 drops exactly those (half the rows).
Measured (``luodi eval release-size``, docs/release_size.md): dropped bigrams read through the trained
UNK row cost more F1 than their rows' near-random values suggest, because that row was only ever
trained on sentence-edge bigrams; ``unk="mean"`` (the dropped rows' mean as the UNK row) costs far less.

What ``shrink_bigrams`` changes, and nothing else (every other file and every other byte of the graph
stay identical):

- ``model.onnx``: the initializer read by the ``Gather`` over the graph input ``bigram_ids`` keeps rows
  0 (PAD) and 1 (UNK) and the rows of the kept bigrams, in their old order; the per-tensor int8 scale and
  zero point are untouched, so a kept row dequantises to exactly the same values.
- ``luodi.json``: ``config.bigrams`` keeps the kept bigrams in their old order, lined up with the new
  table (bigram j of the list is row j + 2, ``bigram_index``; the shipped list is ordered by count, so
  the kept bigrams are a prefix and keep their ids). A dropped bigram is no longer in the index and the
  segmenter looks it up as UNK, as it does any bigram unseen in training.
- with ``unk="mean"`` only: the UNK row (row 1) becomes the mean of the dropped rows.
- ``shrink.json`` (new): what was done (min_count, counts before / after, the sample that was counted).

The counts are the training sample's: ``training_bigram_counts`` rebuilds the sample ``luodi train
segment`` drew (same data, granularities, ``--max-chars`` and ``--seed``, read from the release card's
training command) and refuses to go on unless counting it reproduces the shipped vocabulary exactly.
"""

from __future__ import annotations

import inspect
import json
import shlex
import shutil
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from luodi.runtime.tasks import CONFIG_FILE, MODEL_FILE, is_release_dir

BIGRAM_INPUT = "bigram_ids"  # the graph input export_task names (luodi.runtime.tasks._signature)
SHRINK_FILE = "shrink.json"
# files that describe an artifact rather than make it up: not counted in its size (export_release's
# size_mb is taken before card.json / CARD.md are written)
NOT_ARTIFACT = {"card.json", "CARD.md", SHRINK_FILE}
UNK_ROWS = ("keep", "mean")
FIRST_ROW = 2  # rows 0 (PAD) and 1 (UNK) come before the vocabulary (luodi.tasks.segment.PAD / UNK)


# ----------------------------------------------------------------------------- the training sample


def card_sample_args(release_dir: str | Path) -> dict[str, int]:
    """``max_chars`` and ``seed`` of the ``luodi train segment`` command in the release card
    (``card.json`` ``training_commands``); an option the command does not give takes the command's
    default (read from ``train_segment`` itself, so the two cannot drift)."""
    from luodi.commands.segment import train_segment

    card_path = Path(release_dir) / "card.json"
    if not card_path.is_file():
        raise FileNotFoundError(f"{card_path}: no release card; pass max_chars and seed explicitly")
    commands = json.loads(card_path.read_text(encoding="utf-8")).get("training_commands") or []
    train = [c for c in commands if " train segment" in f" {c}"]
    if len(train) != 1:
        raise ValueError(f"{card_path}: expected one `luodi train segment` command, found {len(train)}")
    argv = shlex.split(train[0])
    params = inspect.signature(train_segment).parameters
    out = {}
    for name, flag in (("max_chars", "--max-chars"), ("seed", "--seed")):
        given = [a.split("=", 1)[1] for a in argv if a.startswith(flag + "=")]
        given += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]
        out[name] = int(given[-1]) if given else int(params[name].default.default)
    return out


def resolve_sample(release_dir: str | Path, max_chars: int | None, seed: int | None) -> dict[str, int]:
    """{"max_chars", "seed"}: the given values, the card's command's for those not given."""
    if max_chars is None or seed is None:
        args = card_sample_args(release_dir)
        max_chars = args["max_chars"] if max_chars is None else max_chars
        seed = args["seed"] if seed is None else seed
    return {"max_chars": int(max_chars), "seed": int(seed)}


def training_texts(
    granularities: Sequence[str], max_chars: int, seed: int, root: Path | None = None
) -> list[str]:
    """The texts of the sample ``luodi train segment`` trains on (and builds its bigram vocabulary from)."""
    from luodi.tasks.segment import balanced_sample, cws_sentences

    corpora = {g: s for g, s in cws_sentences("train", root).items() if g in granularities}
    return ["".join(words) for _, words in balanced_sample(corpora, max_chars, seed=seed)]


def training_bigram_counts(release_dir: str | Path, max_chars: int | None = None, seed: int | None = None,
                           root: Path | None = None) -> Counter:  # fmt: skip
    """How often each bigram occurs in the release segmenter's training sample. ``max_chars`` / ``seed``
    default to the card's training command. Raises unless the sample reproduces the shipped vocabulary
    (same bigrams, same order): counts of another sample would drop the wrong rows."""
    from luodi.tasks.segment import bigram_counts, build_bigram_vocab

    release_dir = Path(release_dir)
    config = _segmenter_meta(release_dir)["config"]
    max_chars, seed = resolve_sample(release_dir, max_chars, seed).values()
    texts = training_texts(config["granularities"], max_chars, seed, root)
    if build_bigram_vocab(texts) != config["bigrams"]:
        raise ValueError(
            f"the training sample (max_chars {max_chars}, seed {seed}, granularities {config['granularities']}) "
            f"does not reproduce the {len(config['bigrams']):,} bigrams of {release_dir / CONFIG_FILE}: "
            "wrong --max-chars / --seed, or the data changed since training"
        )
    return bigram_counts(texts)


# ----------------------------------------------------------------------------- the rewrite


def _segmenter_meta(release_dir: Path) -> dict[str, Any]:
    if not is_release_dir(release_dir):
        raise FileNotFoundError(f"{release_dir}: not a release directory (no {MODEL_FILE} / vocab.json)")
    path = release_dir / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if meta.get("kind") != "segmenter":
        raise ValueError(f"{release_dir} holds a {meta.get('kind')!r} model, not a segmenter")
    config = meta["config"]
    if not config.get("use_bigram") or not config.get("bigrams"):
        raise ValueError(f"{release_dir}: this segmenter has no bigram table to shrink")
    return meta


def bigram_table(model) -> Any:
    """The initializer (``onnx.TensorProto``) the ``Gather`` over the graph input ``bigram_ids`` reads."""
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and len(n.input) == 2
               and n.input[1] == BIGRAM_INPUT]  # fmt: skip
    if len(gathers) != 1:
        raise ValueError(f"expected one Gather over the graph input {BIGRAM_INPUT!r}, found {len(gathers)}")
    name = gathers[0].input[0]
    tables = [t for t in model.graph.initializer if t.name == name]
    if len(tables) != 1:
        raise ValueError(f"the bigram Gather reads {name!r}, which is not an initializer")
    readers = [n.name or n.op_type for n in model.graph.node if name in n.input]
    if len(readers) != 1:  # another reader would see rows renumbered under it
        raise ValueError(
            f"{name!r} is read by {len(readers)} nodes ({readers}); only the bigram Gather expected"
        )
    return tables[0]


def _dump_like(meta: dict, raw: str) -> str:
    """``meta`` as JSON in the layout of ``raw`` (export_release writes compact, non-ASCII JSON), so that
    only the bigram list changes in the file."""
    for kwargs in ({"ensure_ascii": False}, {"ensure_ascii": False, "indent": 2}):
        if json.dumps(json.loads(raw), **kwargs) == raw:
            return json.dumps(meta, **kwargs)
    raise ValueError(
        f"{CONFIG_FILE}: unknown JSON layout; cannot rewrite it leaving the other fields byte-identical"
    )


def artifact_mb(release_dir: str | Path) -> float:
    """Size of a release directory's artifact files in MB (as export_release counts: cards excluded)."""
    files = [p for p in Path(release_dir).rglob("*") if p.is_file() and p.name not in NOT_ARTIFACT]
    return round(sum(p.stat().st_size for p in files) / 1e6, 2)


def shrink_bigrams(release_dir: str | Path, out_dir: str | Path, min_count: int,
                   counts: Mapping[str, int] | None = None, max_chars: int | None = None,
                   seed: int | None = None, root: Path | None = None, unk: str = "keep",
                   sample: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """Write a copy of the segmenter release ``release_dir`` to ``out_dir`` (new or empty) keeping only
    the bigrams seen >= ``min_count`` times in the training sample. ``counts``: bigram -> count (default:
    ``training_bigram_counts(release_dir, max_chars, seed, root)``; every bigram of the vocabulary must be in it).
    ``unk``: "keep" leaves the UNK row as trained (the default: only the table's length changes);
    "mean" replaces it by the mean of the dropped rows, an experiment (``luodi eval release-size
    --unk mean``): the trained UNK row only ever stood for edge bigrams seen once (``build_bigram_vocab``
    keeps every bigram counted twice), while the rare rows are barely moved from their random init, so
    their mean (~0) may stand in for them better. It changes the answer for every bigram not in the
    vocabulary, not only the dropped ones.
    ``sample``: with ``counts``, the sample they were counted from (recorded in shrink.json).
    Returns {"min_count", "bigrams", "dropped", "size_mb", "unk"}."""
    import onnx
    from onnx import numpy_helper

    if isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or min_count < 1:
        raise ValueError(f"min_count must be an integer >= 1, got {min_count!r}")
    if unk not in UNK_ROWS:
        raise ValueError(f"unk must be one of {UNK_ROWS}, got {unk!r}")
    release_dir, out_dir = Path(release_dir), Path(out_dir)
    meta = _segmenter_meta(release_dir)
    vocab = meta["config"]["bigrams"]
    if out_dir.resolve() == release_dir.resolve():
        raise ValueError(f"{out_dir}: write the smaller copy to another directory, not over its source")
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir} exists and is not an empty directory")
    if counts is None:
        counts = training_bigram_counts(release_dir, max_chars, seed, root)
        source = {"sample": resolve_sample(release_dir, max_chars, seed)}
    else:
        source = {"sample": sample or "counts given by the caller"}
    missing = [b for b in vocab if counts.get(b, 0) < 1]
    if missing:
        raise ValueError(f"{len(missing):,} bigrams of the vocabulary have no count (e.g. {missing[0]!r}): "
                         "the counts are not of this model's training sample")  # fmt: skip
    keep = [i for i, b in enumerate(vocab) if counts[b] >= min_count]

    model = onnx.load(str(release_dir / MODEL_FILE))
    table = bigram_table(model)
    weights = numpy_helper.to_array(table)
    if weights.ndim != 2 or weights.shape[0] != len(vocab) + FIRST_ROW:
        raise ValueError(f"{table.name} has shape {weights.shape}; expected {len(vocab) + FIRST_ROW} rows "
                         f"({len(vocab)} bigrams + PAD + UNK) as {CONFIG_FILE} says")  # fmt: skip
    rows = np.concatenate([np.arange(FIRST_ROW), np.asarray(keep, dtype=np.int64) + FIRST_ROW])
    # in place in the initializer list: the graph's other bytes serialise exactly as before
    new = np.ascontiguousarray(weights[rows])
    dropped = np.setdiff1d(np.arange(FIRST_ROW, len(weights)), rows)
    if unk == "mean" and dropped.size:
        # an int8 table has one scale and zero point: the mean of the stored integers, rounded, is the
        # quantised mean of the rows
        mean = weights[dropped].astype(np.float64).mean(0)
        new[FIRST_ROW - 1] = np.rint(mean) if np.issubdtype(new.dtype, np.integer) else mean
    table.CopyFrom(numpy_helper.from_array(new, table.name))

    raw = (release_dir / CONFIG_FILE).read_text(encoding="utf-8")
    new_meta = {**meta, "config": {**meta["config"], "bigrams": [vocab[i] for i in keep]}}
    text = _dump_like(new_meta, raw)

    out_dir.mkdir(parents=True, exist_ok=True)
    for path in release_dir.iterdir():  # everything else as it is (vocab.json, cards, lexicons)
        if path.name in (MODEL_FILE, CONFIG_FILE, SHRINK_FILE):
            continue
        if path.is_dir():
            shutil.copytree(path, out_dir / path.name)
        else:
            shutil.copy2(path, out_dir / path.name)
    onnx.save(model, str(out_dir / MODEL_FILE))
    (out_dir / CONFIG_FILE).write_text(text, encoding="utf-8")
    info = {"min_count": int(min_count), "bigrams": len(keep), "dropped": len(vocab) - len(keep),
            "size_mb": artifact_mb(out_dir), "unk": unk}  # fmt: skip
    record = {**info, "source_bigrams": len(vocab), "source_size_mb": artifact_mb(release_dir), **source,
              "note": "bigrams seen fewer than min_count times in the training sample map to UNK "
              + ("(row unchanged); " if unk == "keep" else "(row = the mean of the dropped rows); ")
              + "card.json / CARD.md are the source artifact's, unchanged"}  # fmt: skip
    (out_dir / SHRINK_FILE).write_text(json.dumps(record, ensure_ascii=False, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> None:
    """``python -m luodi.runtime.shrink release/segmenter --min-count 5 --out DIR``: a copy of a segmenter
    release without the bigrams seen fewer than K times in its training sample (the source is only read)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("release", type=Path, help="An existing segmenter release directory.")
    ap.add_argument("--min-count", type=int, required=True, help="Keep bigrams seen at least this often.")
    ap.add_argument("--out", type=Path, required=True, help="Where to write the copy (new or empty dir).")
    ap.add_argument("--max-chars", type=int, help="Training sample size (default: the card's command).")
    ap.add_argument("--seed", type=int, help="Training sample seed (default: the card's command).")
    ap.add_argument(
        "--unk", choices=UNK_ROWS, default="keep", help="UNK row: as trained, or the dropped rows' mean."
    )
    args = ap.parse_args(argv)
    try:
        info = shrink_bigrams(
            args.release, args.out, args.min_count, max_chars=args.max_chars, seed=args.seed, unk=args.unk
        )
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        ap.exit(2, f"error: {err}\n")
    print(
        f"{args.out}: {info['bigrams']:,} bigrams kept, {info['dropped']:,} dropped, {info['size_mb']:.2f} MB"
    )


if __name__ == "__main__":
    main()
