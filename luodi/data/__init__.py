"""One loader per data set in ../shared/data (LUODI_DATA), with the fixed splits of its SOURCES.md."""

from luodi.data.cws import (
    load_msr,
    load_pku1998,
    load_pku_test,
    load_sighan_gold,
    load_training_words,
    load_weibo,
)
from luodi.data.dialogue import load_chatterbot, load_lccc_multiturn, load_lccc_pairs
from luodi.data.errors import DataFormatError
from luodi.data.intent import IntentExample, load_cais, load_lexicons, load_nlpcc2018
from luodi.data.similarity import Pair, load_pairs, similarity_split

__all__ = [
    "DataFormatError", "IntentExample", "Pair", "load_cais", "load_chatterbot", "load_lccc_multiturn",
    "load_lccc_pairs", "load_lexicons", "load_msr", "load_nlpcc2018", "load_pairs", "load_pku1998",
    "load_pku_test", "load_sighan_gold", "load_training_words", "load_weibo", "similarity_split",
]  # fmt: skip
