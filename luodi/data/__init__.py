"""One loader per data set in the data root (``$LUODI_DATA``, default ../shared/data), with the fixed
splits of its SOURCES.md. Every loader takes ``root=`` to read another copy; a malformed line raises
:class:`DataFormatError` (``file:line: problem``), a missing file FileNotFoundError."""

from luodi.data.cws import (
    load_msr,
    load_pku1998,
    load_pku_test,
    load_sighan_gold,
    load_training_words,
    load_weibo,
    sighan_paths,
)
from luodi.data.dialogue import load_chatterbot, load_lccc_multiturn, load_lccc_pairs, unspace
from luodi.data.errors import DataFormatError
from luodi.data.intent import (
    IntentExample,
    Slot,
    load_cais,
    load_lexicons,
    load_nlpcc2018,
    nlpcc_session_split,
    parse_slot_markup,
    spans_to_bioes,
)
from luodi.data.similarity import Pair, load_pairs, similarity_split

__all__ = [
    "DataFormatError", "IntentExample", "Pair", "Slot", "load_cais", "load_chatterbot",
    "load_lccc_multiturn", "load_lccc_pairs", "load_lexicons", "load_msr", "load_nlpcc2018", "load_pairs",
    "load_pku1998", "load_pku_test", "load_sighan_gold", "load_training_words", "load_weibo",
    "nlpcc_session_split", "parse_slot_markup", "sighan_paths", "similarity_split", "spans_to_bioes",
    "unspace",
]  # fmt: skip
