"""The `general` verifier: a sequence-classification reward model scores (prompt, answer).

Stage two of the QwQ recipe rewards general helpfulness with a learned reward model (RM) instead
of a rule. This module wraps any `AutoModelForSequenceClassification` with one output:

1. Only the answer after the last `</think>` is shown to the RM, formatted with the RM's own chat
   template as [user prompt, assistant answer] (plain `prompt + answer + eos` when the RM's
   tokenizer has no template, which is how TRL's RewardTrainer formats such data). The reasoning
   is never scored, so the policy cannot be paid for reasoning that flatters the RM.
2. An unfinished completion (reasoning opened and never closed) is not shown to the RM and gets
   the minimum reward: 0.0 under `sigmoid` (its floor), else the lowest score of the same call.
3. Scores are the RM's raw logit, or normalized per call: `sigmoid` (the default; [0, 1] as
   `qwqrl score` promises) or `zscore` (mean 0, std 1 over the call's finished completions).
4. Inputs are sorted by token length and run in batches of at most `batch_size` to cut padding;
   padding is on the right, so a score does not depend on its batch mates.

The RM runs in-process (`RewardModelScorer`, on the trainer's device or another one such as
`cuda:1`) or behind `qwqrl rm serve` (`RemoteRewardModel`); both have the same interface:
`score`, `verify_batch` (what the RewardRouter calls) and `make_rm_reward(scorer)` for TRL. The
registry's `general` verifier (`verify_batch` below, used by `qwqrl score`) opens the RM named by
its `reward_model` option or `$QWQRL_REWARD_MODEL`: a folder or a server URL. torch and
transformers are imported only when a local RM is built, so this module imports without them.
"""
from __future__ import annotations

import functools
import math
import os
import threading
from collections.abc import Sequence
from typing import Any, Literal

import httpx

from qwqrl.verifiers.base import Verdict, completion_text, final_answer
from qwqrl.verifiers.reward_fn import RewardFunction, reward_function

Normalize = Literal["none", "zscore", "sigmoid"]
NORMALIZATIONS: tuple[str, ...] = ("none", "zscore", "sigmoid")
Prompt = str | list[dict[str, Any]]
Raw = list[float | None]  # one RM logit per completion; None: unfinished
REWARD_MODEL_ENV = "QWQRL_REWARD_MODEL"


def as_messages(prompt: Prompt) -> list[dict[str, Any]]:
    """A record's prompt as chat messages: a string becomes one user turn."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, list) and all(isinstance(m, dict) and "content" in m for m in prompt):
        return list(prompt)
    raise TypeError(f"prompt must be a string or chat messages, got {type(prompt).__name__}")


def answer_of(completion: Any, think_opened: bool = True) -> str | None:
    """The part of a completion the RM judges, stripped; None when the reasoning is unfinished."""
    answer = final_answer(completion_text(completion), think_opened)
    return None if answer is None else answer.strip()


def encode_pair(tokenizer: Any, prompt: Prompt, answer: str, max_length: int) -> list[int]:
    """Token ids of [user prompt, assistant answer] as the RM sees them.

    Longer inputs keep their last `max_length` tokens: the answer matters more than the start of a
    long prompt. Training (`qwqrl.rm.train`) encodes pairs with this same function.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = as_messages(prompt) + [{"role": "assistant", "content": answer}]
        ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"]
    else:
        text = "\n".join(str(m["content"]) for m in as_messages(prompt))
        ids = tokenizer(text + answer + (tokenizer.eos_token or ""))["input_ids"]
    return list(ids)[-max_length:]


def normalize_scores(raw: Sequence[float | None], method: str) -> list[float]:
    """Normalize one call's raw RM scores; None (unfinished) becomes the minimum (module doc)."""
    _check_normalize(method)
    finished = [r for r in raw if r is not None]
    if method == "sigmoid":
        return [0.0 if r is None else _sigmoid(r) for r in raw]
    if method == "none":
        floor = min(finished, default=0.0)
        return [floor if r is None else r for r in raw]
    mean = sum(finished) / len(finished) if finished else 0.0  # zscore
    std = math.sqrt(sum((r - mean) ** 2 for r in finished) / len(finished)) if finished else 0.0
    z = [None if r is None else ((r - mean) / std if std > 0 else 0.0) for r in raw]
    floor = min((v for v in z if v is not None), default=0.0)
    return [floor if v is None else v for v in z]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _check_normalize(normalize: str) -> str:
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalize!r}; expected one of {NORMALIZATIONS}")
    return normalize


class _Scoring:
    """What local and remote RMs share; subclasses provide `raw_scores` (None: unfinished)."""

    normalize: str
    unavailable: tuple[type[Exception], ...] = ()  # failures that mean "could not judge"

    def raw_scores(self, prompts: Sequence[Prompt], completions: Sequence[Any]) -> Raw:
        raise NotImplementedError

    def score(self, prompts: Sequence[Prompt], completions: Sequence[Any]) -> list[float]:
        """One score per completion, normalized over this call."""
        return normalize_scores(self.raw_scores(prompts, completions), self.normalize)

    def verify_batch(self, records: Sequence[dict[str, Any]]) -> list[Verdict]:
        """Verdicts for records with `prompt` and `completion`, normalized over the call.

        A malformed record, or every record when a remote RM is unreachable, gets score None
        with the reason in `error`: the trainer masks such samples.
        """
        verdicts: list[Verdict | None] = [None] * len(records)
        good: list[int] = []
        for i, record in enumerate(records):
            problem = _record_problem(record)
            if problem:
                verdicts[i] = Verdict(None, {"verifier": "reward_model"}, error=problem)
            else:
                good.append(i)
        try:
            raw = self.raw_scores([records[i]["prompt"] for i in good],
                                  [records[i]["completion"] for i in good])
        except self.unavailable as e:
            return [v or Verdict(None, {"verifier": "reward_model"}, error=f"reward model: {e}")
                    for v in verdicts]
        for i, r, s in zip(good, raw, normalize_scores(raw, self.normalize)):
            detail: dict[str, Any] = {"verifier": "reward_model", "raw": r}
            if r is None:
                detail["unfinished"] = True
            verdicts[i] = Verdict(s, detail)
        return verdicts  # type: ignore[return-value]

    def verify(self, record: dict[str, Any]) -> Verdict:
        """One record's verdict (a zscore over a single record is always 0.0)."""
        return self.verify_batch([record])[0]


def _record_problem(record: dict[str, Any]) -> str | None:
    if "completion" not in record:
        return "record has no `completion`"
    try:
        as_messages(record.get("prompt"))
        completion_text(record["completion"])
    except TypeError as e:
        return str(e)
    return None


class RewardModelScorer(_Scoring):
    """A reward model in this process.

    `path_or_model`: a folder (or hub id) loadable by `AutoModelForSequenceClassification`, or
    such a model already built (then `tokenizer` is required). `think_opened`: the policy's chat
    template opened `<think>` (QwQ's does), so a completion without `</think>` is unfinished.
    `max_length` is capped by the model's `max_position_embeddings`; `dtype` (e.g. "bfloat16")
    applies when loading from a path. Thread-safe: overlapping calls (the HTTP server, a
    concurrent reward router) take turns on the model.
    """

    def __init__(self, path_or_model: Any, tokenizer: Any = None, device: str = "cpu",
                 batch_size: int = 16, max_length: int = 4096, normalize: Normalize = "sigmoid",
                 think_opened: bool = True, dtype: str | None = None) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if batch_size < 1 or max_length < 1:
            raise ValueError("batch_size and max_length must be positive")
        self.normalize = _check_normalize(normalize)
        if isinstance(path_or_model, (str, os.PathLike)):
            path = os.fspath(path_or_model)
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
            kwargs = {"dtype": getattr(torch, dtype)} if dtype else {}
            model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
        elif tokenizer is None:
            raise ValueError("pass the RM's tokenizer along with a model object")
        else:
            self.tokenizer, model = tokenizer, path_or_model
        if model.config.num_labels != 1:
            raise ValueError(f"a reward model has one output, this one {model.config.num_labels}")
        text_config = model.config.get_text_config()
        if text_config.pad_token_id is None:  # the head finds each row's last token by padding
            text_config.pad_token_id = self.tokenizer.pad_token_id
            if text_config.pad_token_id is None:
                text_config.pad_token_id = self.tokenizer.eos_token_id
        self.pad_id: int = text_config.pad_token_id
        self.model = model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.max_length = min(max_length, getattr(text_config, "max_position_embeddings", None)
                              or max_length)
        self.think_opened = think_opened
        self._lock = threading.Lock()

    def raw_scores(self, prompts: Sequence[Prompt], completions: Sequence[Any]) -> Raw:
        """The RM's logit per completion; None for an unfinished one."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        answers = [answer_of(c, self.think_opened) for c in completions]
        encoded = {i: encode_pair(self.tokenizer, prompts[i], a, self.max_length)
                   for i, a in enumerate(answers) if a is not None}
        order = sorted(encoded, key=lambda i: len(encoded[i]))
        raw: Raw = [None] * len(answers)
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                chunk = order[start:start + self.batch_size]
                for i, value in zip(chunk, self._forward([encoded[i] for i in chunk])):
                    raw[i] = value
        return raw

    def _forward(self, rows: list[list[int]]) -> list[float]:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):
            ids[k, :len(row)] = torch.tensor(row)
            mask[k, :len(row)] = 1
        with torch.inference_mode():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        return out.logits[:, 0].float().cpu().tolist()


class RemoteRewardModel(_Scoring):
    """A reward model behind `qwqrl rm serve URL`; same interface as `RewardModelScorer`.

    The server batches and extracts answers; this client normalizes the server's raw scores with
    its own `normalize`. One call is one request, so a zscore covers the whole call. An HTTP
    failure is never a low score: `score` raises, `verify_batch` gives None verdicts.
    """

    unavailable = (httpx.HTTPError,)

    def __init__(self, url: str, normalize: Normalize = "sigmoid",
                 timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self.normalize = _check_normalize(normalize)
        self._client = httpx.Client(timeout=timeout_s)

    def raw_scores(self, prompts: Sequence[Prompt], completions: Sequence[Any]) -> Raw:
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        items = [{"prompt": p, "completion": completion_text(c)}
                 for p, c in zip(prompts, completions)]
        response = self._client.post(f"{self.url}/v1/score", json={"items": items})
        response.raise_for_status()
        return response.json()["raw"]

    def close(self) -> None:
        self._client.close()


def make_rm_reward(scorer: _Scoring) -> RewardFunction:
    """A TRL reward function `fn(completions, prompts, **columns)` over `scorer`."""
    return reward_function(scorer.verify_batch, "general_reward")


@functools.lru_cache(maxsize=4)
def open_reward_model(where: str, normalize: Normalize = "sigmoid", think_opened: bool = True,
                      device: str = "cpu", batch_size: int = 16) -> _Scoring:
    """A scorer for a `qwqrl rm serve` URL (http:// or https://) or an RM folder, cached per
    argument so repeated batches reuse one loaded model (a server applies its own think_opened)."""
    if where.startswith(("http://", "https://")):
        return RemoteRewardModel(where, normalize=normalize)
    return RewardModelScorer(where, device=device, batch_size=batch_size, normalize=normalize,
                             think_opened=think_opened)


def verify_batch(records: Sequence[dict[str, Any]], *, scorer: _Scoring | None = None,
                 path: str | None = None, url: str | None = None,
                 reward_model: str | None = None, device: str | None = None,
                 batch_size: int = 16, normalize: Normalize = "sigmoid",
                 think_opened: bool = True) -> list[Verdict]:
    """The registry's `general` verifier. `scorer` is a live RM (the trainer builds one per
    run from the same options); without it the RM is `url`, `path` or `reward_model` (a folder
    or a `qwqrl rm serve` URL), else $QWQRL_REWARD_MODEL, opened once and cached."""
    if scorer is not None:
        return scorer.verify_batch(records)
    where = url or path or reward_model or os.environ.get(REWARD_MODEL_ENV)
    if not where:
        raise ValueError(f"no reward model: pass path=, url= or set ${REWARD_MODEL_ENV}")
    return open_reward_model(where, normalize, think_opened, device or "cpu",
                             batch_size).verify_batch(records)
