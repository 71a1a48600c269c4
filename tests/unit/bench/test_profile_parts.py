"""bench.profile puts each py-spy sample in the part of the code it was in (innermost owning frame)."""

from __future__ import annotations

from bench.profile import part_of, shares

ORT = "run (/v/lib/python3.11/site-packages/onnxruntime/capi/onnxruntime_inference_collection.py:275)"
GLUE = "predict_tags (/w/luodi/tasks/intent.py:300)"
BATCH = "_run (/w/luodi/serve/batcher.py:210)"
NUMPY = "argmax (/v/lib/python3.11/site-packages/numpy/_core/fromnumeric.py:1200)"
HTTP = "handle (/v/lib/python3.11/site-packages/starlette/routing.py:77)"
JSON = "encode (/usr/lib/python3.11/json/encoder.py:200)"


def test_the_innermost_owning_frame_decides():
    assert part_of([BATCH, GLUE, ORT]) == "onnxruntime"
    assert part_of([BATCH, GLUE, NUMPY]) == "model glue"  # numpy counts for the code that called it
    assert part_of([HTTP, JSON]) == "http + validation"
    assert part_of(["<module> (x.py:1)"]) == "other"


def test_shares_sum_the_collapsed_counts():
    raw = f"{BATCH};{GLUE};{ORT} 30\n{BATCH};{GLUE} 10\n{HTTP};{JSON} 5\nnot a sample line\n"
    counts, total = shares(raw)
    assert total == 45 and counts == {"onnxruntime": 30, "model glue": 10, "http + validation": 5}
