"""Request and response bodies of the HTTP API (pydantic; they also make the OpenAPI docs).

Two kinds of rejection, both 4xx with a message a client can act on:
- the shape is wrong (missing field, wrong type, empty or whitespace-only text, text that is not valid
  Unicode, unknown field) -> 422, raised by pydantic while parsing;
- the shape is right but too big for this server's limits (text length, items per request, k) -> 413,
  raised by ``check_limits`` with the limit from the config, so the limits are configurable per deployment.
"""

from __future__ import annotations

import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator, model_validator

from luodi.serve.config import LimitsConfig


class LimitExceeded(Exception):
    """A request over a configured limit (-> 413)."""


def _visible(ch: str) -> bool:
    # Z* = separators (spaces), C* = control, format (zero-width, BOM, bidi marks), surrogates, unassigned
    return unicodedata.category(ch)[0] not in "ZC"


def _check_text(text: str, where: str = "text") -> str:
    try:
        text.encode("utf-8")  # lone surrogates ("\ud800") parse as JSON but break every tokenizer
    except UnicodeEncodeError:
        raise ValueError(f"{where} is not valid Unicode (it contains a lone surrogate)") from None
    if not any(_visible(ch) for ch in text):
        raise ValueError(f"{where} is empty or whitespace only (no visible character)")
    return text


class _Request(BaseModel):
    # Unknown fields are rejected: a misspelt "granularty" must not silently fall back to the default.
    model_config = ConfigDict(extra="forbid")


class TextRequest(_Request):
    """One utterance (ASR text; may hold several sentences)."""

    text: StrictStr = Field(..., examples=["明天上海会下雨吗帮我放首周杰伦的歌"])

    @field_validator("text")
    @classmethod
    def _text(cls, v: str) -> str:
        return _check_text(v)


class UnderstandRequest(_Request):
    """One utterance as ASR gives it (``text``: the assistant breaks it into queries), or one the caller
    has already broken (``queries``: typed chat turns, their own voice-activity segments; no breaking)."""

    text: StrictStr | None = Field(None, examples=["明天上海会下雨吗帮我放首周杰伦的歌"])
    queries: list[StrictStr] | None = Field(
        None, min_length=1, examples=[["明天上海会下雨吗", "帮我放首周杰伦的歌"]]
    )

    @field_validator("text")
    @classmethod
    def _text(cls, v: str | None) -> str | None:
        return None if v is None else _check_text(v)

    @field_validator("queries")
    @classmethod
    def _queries(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_check_text(q, f"queries[{i}]") for i, q in enumerate(v)]

    @model_validator(mode="after")
    def _one_of(self) -> UnderstandRequest:
        if (self.text is None) == (self.queries is None):
            raise ValueError(
                'give exactly one of "text" (to be broken into queries) and "queries" (already broken)'
            )
        return self

    def item(self) -> str | dict[str, list[str]]:
        """What the understand model is given: the text, or ``{"queries": [...]}``."""
        return self.text if self.text is not None else {"queries": list(self.queries)}


class TextsRequest(_Request):
    texts: list[StrictStr] = Field(..., min_length=1, examples=[["放首周杰伦的歌", "明天天气怎么样"]])

    @field_validator("texts")
    @classmethod
    def _texts(cls, v: list[str]) -> list[str]:
        return [_check_text(t, f"texts[{i}]") for i, t in enumerate(v)]


class SegmentRequest(TextsRequest):
    granularity: Literal["fine", "coarse", "both"] = "both"


class MatchRequest(_Request):
    """Score ``query`` against ``candidates`` (ranked), or search the FAQ index when no candidates are given."""

    query: StrictStr = Field(..., examples=["怎么修改密码"])
    candidates: list[StrictStr] | None = Field(
        None, min_length=1, examples=[["如何更改登录密码", "今天天气"]]
    )
    k: int = Field(5, ge=1, strict=True)

    @field_validator("query")
    @classmethod
    def _query(cls, v: str) -> str:
        return _check_text(v, "query")

    @field_validator("candidates")
    @classmethod
    def _candidates(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else [_check_text(t, f"candidates[{i}]") for i, t in enumerate(v)]


def check_limits(
    request: BaseModel, limits: LimitsConfig, model_chars: int | None = None, model: str = "model"
) -> None:
    """Raise LimitExceeded naming the field and the limit (413). ``model_chars``: what the serving model
    itself reads (its predictor's ``max_chars``), checked before batching: one over-long text in a
    micro-batch would fail its neighbours too."""
    texts: list[tuple[str, str]] = []
    if isinstance(request, UnderstandRequest) and request.queries is not None:
        if len(request.queries) > limits.max_batch_items:
            raise LimitExceeded(
                f"{len(request.queries)} queries in one request; the limit is {limits.max_batch_items}"
            )
        # the assistant reads them as one text (the queries joined): that text has the text limit
        texts = [("queries (joined)", "".join(request.queries))]
    elif isinstance(request, (TextRequest, UnderstandRequest)):
        texts = [("text", request.text)]
    elif isinstance(request, TextsRequest):
        if len(request.texts) > limits.max_batch_items:
            raise LimitExceeded(
                f"{len(request.texts)} texts in one request; the limit is {limits.max_batch_items}"
            )
        texts = [(f"texts[{i}]", t) for i, t in enumerate(request.texts)]
    elif isinstance(request, MatchRequest):
        if request.candidates is not None and len(request.candidates) > limits.max_batch_items:
            raise LimitExceeded(
                f"{len(request.candidates)} candidates in one request; the limit is {limits.max_batch_items}"
            )
        if request.k > limits.max_k:
            raise LimitExceeded(f"k={request.k}; the limit is {limits.max_k}")
        texts = [("query", request.query)] + [
            (f"candidates[{i}]", t) for i, t in enumerate(request.candidates or [])
        ]
    for where, text in texts:
        if len(text) > limits.max_text_chars:
            raise LimitExceeded(f"{where} has {len(text)} characters; the limit is {limits.max_text_chars}")
    for where, text in texts if model_chars is not None else ():  # after the service's own limit, as before
        if len(text) > model_chars:
            raise LimitExceeded(
                f"{where} has {len(text)} characters; the {model} model reads at most {model_chars}"
            )


# -- responses --------------------------------------------------------------------------------------


class Segmentation(BaseModel):
    fine: list[str] | None = None
    coarse: list[str] | None = None


class SegmentResponse(BaseModel):
    results: list[Segmentation]


class IntentResult(BaseModel):
    # slots and top_k are passed through as the intent model returns them.
    model_config = ConfigDict(extra="allow")
    intent: str
    score: float
    slots: Any = None
    top_k: Any = None


class IntentResponse(BaseModel):
    results: list[IntentResult]


class Match(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. an FAQ answer
    text: str
    score: float
    index: int | None = None


class MatchResponse(BaseModel):
    matches: list[Match]


class ChatResponse(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. "source": retrieval | generation
    reply: str


class UnderstandResponse(BaseModel):
    """The pipeline's Doc: "sentences", "seg/fine", "seg/coarse", "slots", "intent", "answer", "timings" ..."""

    model_config = ConfigDict(extra="allow")
    timings: dict[str, float] = Field(default_factory=dict, description="milliseconds per pipeline stage")


class ErrorResponse(BaseModel):
    detail: str


Granularity = Literal["fine", "coarse"]
