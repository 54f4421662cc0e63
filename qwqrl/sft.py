"""The cold-start stage: supervised fine-tuning on reasoning traces, in the RL stages' Learner.

QwQ's RL starts from a cold-start checkpoint that already writes `<think>` reasoning and a final
answer in the expected format. Records carry `prompt` and `completion` (the reference response
after the template's `<think>\\n`). The loop, read top to bottom:

1. Tokenize every record once (prompt rendered as generation renders it; the completion plus EOS
   cut to `max_length` tokens in all; tool turns inside a completion are context, not targets:
   `SFTRow.loss_mask` is 0 on them, as the rollout loop's action mask is), and fix the order: a seeded random permutation, or
   length-bucketed batches in random order with `group_by_length`.
2. Each step takes the next `trainer.batch_size` sequences (global: each data-parallel rank
   trains on its equal share), split into micro-batches by count or token budget.
3. The loss is the trained completion tokens' mean negative log-likelihood over the whole global batch
   (TRL's SFTTrainer normalisation), from the same `pack` + `completion_logprobs` the RL update
   uses, so the prompt's logits are never computed.
4. The Learner (DeepSpeed, the recipe's `zero_stage` / `offload` / `deepspeed`) clips and steps.
   A 32B cold start shards its weights and optimizer like the RL stages do.
5. With `stop_at`, evaluate every `stop_at.every` steps and stop once the held-out metric
   reaches the threshold, so RL still has room to improve; step checkpoints resume exactly.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from qwqrl.chat_template import split_tool_turns
from qwqrl.checkpoint import Progress, load_step, save_step
from qwqrl.config import SFTStage
from qwqrl.distributed import Dist, all_reduce_mean
from qwqrl.errors import UserError
from qwqrl.generation.base import encode_prompts
from qwqrl.learner import Learner
from qwqrl.sequences import completion_logprobs, pack

# TRL's SFTTrainer takes torch's AdamW defaults (transformers' TrainingArguments); the RL stages
# use beta2 0.99. The cold start keeps TRL's, which the demo's calibration was measured with.
SFT_BETAS = (0.9, 0.999)


def length_bucketed(lengths: list[int], batch: int, seed: int) -> list[int]:
    """Indices ordered so that each consecutive `batch` holds sequences of similar length, with
    the batches in random order. On mixed data this cuts padding several-fold; unlike a sampler
    that sorts large windows, it never runs dozens of steps of one kind of example in a row."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    random.Random(seed).shuffle(batches)
    return [i for b in batches for i in b]


class SFTRow(NamedTuple):
    """One tokenized record: the loss trains on `completion` where `loss_mask` is 1."""
    prompt: list[int]
    completion: list[int]
    loss_mask: list[int]  # 0 on the tool turns a trace quotes (`split_tool_turns`), else 1


def tokenize(records: list[dict[str, Any]], tokenizer: Any, render: Callable[[dict[str, Any]], str],
             max_length: int) -> list[SFTRow]:
    """One row per record; the prompt ends inside `<think>\\n` like generation's, the completion
    ends with EOS, and the two together are cut to `max_length`. The completion's segments are
    encoded one by one (`split_tool_turns`), as the rollout loop encodes a tool turn apart from
    the model's tokens, so a trace tokenizes exactly as the rollout that it imitates would."""
    missing = [r.get("id", i) for i, r in enumerate(records) if not r.get("completion")]
    if missing:
        raise UserError(f"sft records need a `completion` (the target response); missing in "
                        f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    prompts = encode_prompts(tokenizer, [render(r) for r in records])
    segments = [split_tool_turns(tokenizer, r["completion"]) + [(tokenizer.eos_token, True)]
                for r in records]
    encoded = iter(encode_prompts(tokenizer, [text for segs in segments for text, _ in segs]))
    rows = []
    for p, segs in zip(prompts, segments):
        parts = [(next(encoded), trained) for _, trained in segs]
        ids = [t for part, _ in parts for t in part]
        mask = [int(trained) for part, trained in parts for _ in part]
        room = max(0, max_length - len(p))
        rows.append(SFTRow(p[:max_length], ids[:room], mask[:room]))
    return rows


class SFTTrainer:
    """One cold-start stage: `train()` runs it (resuming a step checkpoint when given)."""

    def __init__(self, stage: SFTStage, stage_index: int, learner: Learner, tokenizer: Any,
                 rows: list[SFTRow], dist: Dist, seed: int, run_dir: Path,
                 progress: Progress, evaluate: Callable[[Any], dict[str, float]] | None,
                 log: Callable[[dict[str, float], int], None], global_step: int,
                 log_every: int = 1) -> None:
        self.stage, self.index, self.learner, self.tokenizer = stage, stage_index, learner, tokenizer
        self.rows, self.dist, self.progress = rows, dist, progress
        self.evaluate, self.log, self.log_every = evaluate, log, log_every
        self.stage_dir = run_dir / "checkpoints" / stage.name
        self.step, self.global_step = 0, global_step
        batch = stage.trainer.batch_size
        self.order = (length_bucketed([len(r.prompt) + len(r.completion) for r in rows], batch, seed)
                      if stage.group_by_length
                      else np.random.default_rng(seed).permutation(len(rows)).tolist())

    def train(self, progress_bar: Any = None) -> None:
        t = self.stage.trainer
        while self.step < t.max_steps:
            metrics = self.train_step()
            self.step += 1
            self.global_step += 1
            if self.step % self.log_every == 0:
                self.log(metrics, self.global_step)
            if progress_bar is not None:
                progress_bar(self.step, metrics)
            if self._should_stop():
                return
            if self.stage.checkpoint.every and self.step % self.stage.checkpoint.every == 0 \
                    and self.step < t.max_steps:
                self.save()

    def train_step(self) -> dict[str, float]:
        """One optimizer step on this rank's share of the next global batch."""
        t, world, rank = self.stage.trainer, self.dist.world_size, self.dist.rank
        share = t.batch_size // world
        start = self.step * t.batch_size + rank * share
        mine = [self.rows[self.order[i % len(self.order)]] for i in range(start, start + share)]
        micro = self.learner.micro_batches([len(r.prompt) + len(r.completion) for r in mine])
        packs = [pack([mine[i].prompt for i in mb], [mine[i].completion for i in mb],
                      self.tokenizer.pad_token_id, self.dist.device) for mb in micro]
        masks = [_loss_mask([mine[i].loss_mask for i in mb], p.completion_mask)
                 for mb, p in zip(micro, packs)]
        # Token-mean over the global batch: every rank divides by the same total, and DeepSpeed
        # averages gradients over ranks, hence the factor `world`.
        tokens = torch.tensor(float(sum(m.sum() for m in masks)),
                              dtype=torch.float64, device=self.dist.device)
        if world > 1:
            torch.distributed.all_reduce(tokens)
        total = max(1.0, float(tokens))
        self.learner.train()
        nll_sum, confident = 0.0, 0.0
        for k, (p, mask) in enumerate(zip(packs, masks)):
            logprobs, _ = completion_logprobs(self.learner.engine, p, temperature=1.0)
            mask = mask.to(logprobs.dtype)
            nll = -(logprobs * mask).sum()
            self.learner.backward(nll * world / total, last=k == len(packs) - 1)
            nll_sum += float(nll.detach())
            # A target with probability above 1/2 is certainly the argmax: a lower bound on TRL's
            # mean_token_accuracy that needs no logits (completion_logprobs keeps none).
            confident += float(((logprobs.detach() > -0.6931471805599453) * mask).sum())
        metrics = self.learner.step()
        local = {"loss": nll_sum * world / total, "mean_token_accuracy_lb": confident * world / total}
        return {**all_reduce_mean(local), **metrics}

    def _should_stop(self) -> bool:
        stop_at = self.stage.stop_at
        if stop_at is None or self.step % stop_at.every or self.evaluate is None:
            return False
        metrics = self.evaluate(self.learner)
        self.log({f"eval/{k}": v for k, v in metrics.items()}, self.global_step)
        # Every rank evaluates the same records greedily; the vote keeps them in step regardless.
        reached = float(metrics.get(stop_at.metric, float("-inf")) >= stop_at.threshold)
        return all_reduce_mean({"reached": reached})["reached"] > 0

    def save(self) -> Path:
        state = {"stage": self.stage.name, "stage_index": self.index, "step": self.step,
                 "global_step": self.global_step}
        return save_step(self.stage_dir, self.step, {"policy": self.learner.engine}, state,
                         self.progress, self.stage.name, self.stage.checkpoint.keep,
                         self.dist.is_main, self.dist.rank)

    def resume(self, checkpoint: Path) -> None:
        state = load_step(checkpoint, {"policy": self.learner.engine}, self.dist.rank)
        self.step, self.global_step = state["step"], state["global_step"]


def _loss_mask(rows: list[list[int]], completion_mask: torch.Tensor) -> torch.Tensor:
    """(b, T): the rows' loss masks, right-padded with 0 like `completion_mask`."""
    out = torch.zeros_like(completion_mask)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row, dtype=out.dtype)
    return out
