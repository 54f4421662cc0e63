"""Rollouts with `transformers` `generate`: the CPU demo, the tests, small GPU runs.

The generator shares the learner's module, so there is nothing to sync and nothing to free:
`sync_weights`, `sleep` and `wake_up` are no-ops. Prompts are left-padded into batches of
`batch_size` rows (each prompt repeated n times); `generate_stream` runs the same batches and
yields each prompt's group once its last row's batch is done. Asynchronous rollouts cannot
share the learner's module: `CopiedHFGenerator` samples from a private copy.

Log-probs are recorded during decoding, not from `output_scores`: keeping every step's (B, V)
scores costs T * B * V floats (150 GB for B=64, T=4k, V=152k). Instead temperature, top-k and
top-p run as our own logits processors followed by `_RecordLogprobs`, which holds one step of
log-softmaxed processed scores and gathers the chosen token's entry on the next step. HF
appends its own warpers after custom processors, so the generation config we pass keeps them
neutral; it also pins the knobs a checkpoint's `generation_config.json` may set (QwQ's sets
temperature/top-k/top-p; others set repetition_penalty), which HF would otherwise fill in.

ZeRO-3: every rank holds a shard of each weight and each forward gathers it collectively, so
all ranks must run the same number of forward passes. HF does that with `synced_gpus=True`
(finished ranks keep stepping with dummy inputs), which we pass when torch.distributed is
initialised and the model is partitioned; every rank must then make the same number of
`generate` batches, which we check with one all-reduce before starting.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
from transformers import (GenerationConfig, LogitsProcessor, LogitsProcessorList,
                          StoppingCriteria, StoppingCriteriaList, StopStringCriteria,
                          TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper)
from transformers.generation.stopping_criteria import EosTokenCriteria

from qwqrl.generation.base import Rollout, SamplingParams, encode_prompts
from qwqrl.generation.weights import is_zero3_partitioned, unwrap_model


class _RecordLogprobs(LogitsProcessor):
    """Last logits processor: records log p(chosen token) under the processed distribution.

    At step t it stores log_softmax(scores_t); at step t+1 the token chosen at t is the last
    column of input_ids, so its entry is gathered then. `finish` gathers the final step's.
    Scores pass through unchanged.
    """

    def __init__(self) -> None:
        self.steps: list[torch.Tensor] = []  # (B,) per generated token
        self._pending: torch.Tensor | None = None

    def _gather_pending(self, chosen: torch.Tensor) -> None:
        if self._pending is not None:
            self.steps.append(self._pending.gather(-1, chosen[:, None]).squeeze(-1))

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self._gather_pending(input_ids[:, -1])
        self._pending = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, T_new) log-probs of the generated columns."""
        self._gather_pending(sequences[:, -1])
        self._pending = None
        return torch.stack(self.steps, dim=1)


class _RecordStops(StoppingCriteria):
    """Wraps the stop conditions (EOS, stop strings) and records, per row, how many new tokens
    it had when it first stopped; rows never recorded ran out of budget ("length")."""

    def __init__(self, criteria: list[StoppingCriteria], prompt_width: int, batch: int) -> None:
        self.criteria = criteria
        self.prompt_width = prompt_width
        self.stopped_at: list[int | None] = [None] * batch

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for criterion in self.criteria:
            done |= criterion(input_ids, scores, **kwargs)
        for row in done.nonzero().flatten().tolist():
            if self.stopped_at[row] is None:
                self.stopped_at[row] = input_ids.shape[1] - self.prompt_width
        return done


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The tokenizer's EOS plus any the checkpoint's generation config lists (Qwen lists two)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([configured] if isinstance(configured, int) else configured or [])
    return sorted(i for i in ids if i is not None)


class HFGenerator:
    """`Generator` over a live HF model (plain, peft, or a DeepSpeed engine's module)."""

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16,
                 device: torch.device | str | None = None) -> None:
        if tokenizer.padding_side != "left":
            raise ValueError("HFGenerator needs a left-padding tokenizer (tokenizer.padding_side = 'left')")
        self.model = unwrap_model(model)
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.device = torch.device(device) if device is not None else next(self.model.parameters()).device
        self.eos_ids = eos_token_ids(self.model, tokenizer)

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        return [r for batch in self._batches(prompts, n, sampling) for r in batch]

    def generate_stream(self, prompts: list[str], n: int,
                        sampling: SamplingParams) -> Iterator[list[Rollout]]:
        """The same batches as `generate` (same samples, same RNG use); after each batch, the
        prompts whose n rows are all done are yielded."""
        pending: dict[int, list[Rollout]] = {}
        for batch in self._batches(prompts, n, sampling):
            for rollout in batch:
                group = pending.setdefault(rollout.prompt_index, [])
                group.append(rollout)
                if len(group) == n:
                    yield pending.pop(rollout.prompt_index)

    def _batches(self, prompts: list[str], n: int, sampling: SamplingParams) -> Iterator[list[Rollout]]:
        """Each batch's rollouts, prompt-major (prompt i repeated n times)."""
        rows = [(i, ids) for i, ids in enumerate(encode_prompts(self.tokenizer, prompts)) for _ in range(n)]
        return self._generate_rows(rows, sampling)

    def generate_ids(self, prompt_ids: list[list[int]], sampling: SamplingParams,
                     max_new_tokens: list[int] | None = None) -> list[Rollout]:
        """One completion per row of token ids, continued exactly from those ids (the multi-turn
        tool loop's entry point); `prompt_index` is the row. max_new_tokens: a budget per row
        (default `sampling.max_new_tokens`); a batch samples up to its largest and each row is
        cut at its own, which is the same as sampling with that budget."""
        budget = sampling if max_new_tokens is None else replace(
            sampling, max_new_tokens=max(max_new_tokens, default=1))
        rollouts = [r for batch in self._generate_rows(list(enumerate(prompt_ids)), budget) for r in batch]
        if max_new_tokens is not None:
            for rollout, budget in zip(rollouts, max_new_tokens):
                self._cut(rollout, budget)
        return rollouts

    def _cut(self, rollout: Rollout, budget: int) -> None:
        if len(rollout.completion_ids) <= budget:
            return
        rollout.completion_ids, rollout.logprobs = rollout.completion_ids[:budget], rollout.logprobs[:budget]
        rollout.text = self.tokenizer.decode(rollout.completion_ids, skip_special_tokens=True)
        rollout.finish_reason = "length"

    def _generate_rows(self, rows: list[tuple[int, list[int]]],
                       sampling: SamplingParams) -> Iterator[list[Rollout]]:
        """Each `batch_size` rows' rollouts, in eval mode, without gradients, on a forked RNG
        seeded by `sampling.seed` if given."""
        batches = [rows[s:s + self.batch_size] for s in range(0, len(rows), self.batch_size)]
        synced_gpus = self._synced_gpus(len(batches))
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=self._rng_devices()):
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                for batch in batches:
                    yield self._generate_batch(batch, sampling, synced_gpus)
        finally:
            self.model.train(was_training)

    def sync_weights(self, model: Any) -> None:
        """No-op: the generator runs the learner's own module. Refuses a different module,
        since silently sampling from stale weights would corrupt training."""
        if unwrap_model(model) is not self.model:
            raise ValueError("HFGenerator shares its module with the learner; build a new HFGenerator "
                             "for a different model")

    def sleep(self) -> None:
        """No-op: there is no separate generator memory to free."""

    def wake_up(self) -> None:
        """No-op, see `sleep`."""

    def _rng_devices(self) -> list[torch.device]:
        return [self.device] if self.device.type == "cuda" else []

    def _synced_gpus(self, num_batches: int) -> bool:
        """True under distributed ZeRO-3; then checks every rank makes as many batches."""
        dist = torch.distributed
        if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
                and is_zero3_partitioned(self.model)):
            return False
        counts = torch.tensor([num_batches, -num_batches], device=self.device)
        dist.all_reduce(counts, op=dist.ReduceOp.MAX)
        if counts[0].item() != -counts[1].item():
            raise ValueError(f"under ZeRO-3 every rank must generate the same number of batches; this rank "
                             f"has {num_batches}, others between {-counts[1].item()} and {counts[0].item()}")
        return True

    def _generation_config(self, sampling: SamplingParams) -> GenerationConfig:
        # Sampling warpers are ours (see module docstring); HF's are pinned to no-ops here.
        return GenerationConfig(
            max_new_tokens=sampling.max_new_tokens, do_sample=not sampling.greedy,
            temperature=1.0, top_k=0, top_p=1.0, min_p=None, typical_p=1.0, repetition_penalty=1.0,
            eos_token_id=self.eos_ids, pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=None, return_dict_in_generate=False,
        )

    def _processors(self, sampling: SamplingParams) -> list[LogitsProcessor]:
        if sampling.greedy:
            return []
        warpers: list[LogitsProcessor] = [TemperatureLogitsWarper(sampling.temperature)]
        if sampling.top_k > 0:
            warpers.append(TopKLogitsWarper(sampling.top_k))
        if sampling.top_p < 1.0:
            warpers.append(TopPLogitsWarper(sampling.top_p))
        return warpers

    def _generate_batch(self, batch: list[tuple[int, list[int]]], sampling: SamplingParams,
                        synced_gpus: bool) -> list[Rollout]:
        enc = self.tokenizer.pad({"input_ids": [ids for _, ids in batch]}, return_tensors="pt").to(self.device)
        width = enc["input_ids"].shape[1]
        recorder = _RecordLogprobs()
        criteria: list[StoppingCriteria] = [EosTokenCriteria(self.eos_ids)]
        if sampling.stop:
            criteria.append(StopStringCriteria(self.tokenizer, list(sampling.stop)))
        stops = _RecordStops(criteria, width, len(batch))
        sequences = self.model.generate(
            input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
            generation_config=self._generation_config(sampling),
            logits_processor=LogitsProcessorList([*self._processors(sampling), recorder]),
            stopping_criteria=StoppingCriteriaList([stops]), synced_gpus=synced_gpus,
        )
        logprobs = recorder.finish(sequences)
        new_tokens = sequences[:, width:]
        rollouts = []
        for row, (prompt_index, prompt_ids) in enumerate(batch):
            end = stops.stopped_at[row] or new_tokens.shape[1]
            completion = new_tokens[row, :end].tolist()
            rollouts.append(Rollout(
                prompt_index=prompt_index, prompt_ids=prompt_ids, completion_ids=completion,
                logprobs=logprobs[row, :end].tolist(),
                text=self.tokenizer.decode(completion, skip_special_tokens=True),
                finish_reason="length" if stops.stopped_at[row] is None else "stop",
            ))
        return rollouts


class CopiedHFGenerator(HFGenerator):
    """`HFGenerator` over a private copy of the learner's module, for asynchronous rollouts:
    it can sample while the learner updates its own weights, and `sync_weights` copies the
    learner's parameters in (no gradients, no optimizer state: one more set of weights).

    The trainer never runs `sync_weights` during a `generate` (qwqrl.async_rollouts), so the
    copy is never read half-updated. ZeRO-3 shards are refused: the copy would hold a shard.
    """

    def __init__(self, model: Any, tokenizer: Any, batch_size: int = 16,
                 device: torch.device | str | None = None) -> None:
        module = unwrap_model(model)
        if is_zero3_partitioned(module):
            raise ValueError("CopiedHFGenerator cannot copy a ZeRO-3 partitioned model (each rank "
                             "holds a shard): use trainer.zero_stage <= 2 or a vLLM generator")
        private = copy.deepcopy(module)
        private.requires_grad_(False)
        super().__init__(private, tokenizer, batch_size=batch_size, device=device)

    def sync_weights(self, model: Any) -> None:
        """Copy `model`'s parameters into the private copy (same architecture, same names)."""
        source = dict(unwrap_model(model).named_parameters())
        with torch.no_grad():
            for name, param in self.model.named_parameters():
                if name not in source:
                    raise ValueError(f"sync_weights: the learner has no parameter {name!r}; "
                                     "CopiedHFGenerator syncs only from the model it copied")
                param.copy_(source[name])
