"""The Learner: one trainable model (policy or critic) inside a DeepSpeed engine.

DeepSpeed does the updates on every setup we support: ZeRO 0-3 from the recipe's
`trainer.zero_stage` (bf16 on GPU, fp32 on CPU), our own AdamW and LR schedule handed to
`deepspeed.initialize`, gradient clipping by the engine. An RL batch has a variable number of
micro-batches (filtering, token-budget packing), so accumulation boundaries are set by hand
(`set_gradient_accumulation_boundary`) instead of a fixed `gradient_accumulation_steps`, and each
micro-batch loss is pre-scaled by its share of the batch.
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from qwqrl.config import TrainerConfig
from qwqrl.distributed import forget_stale_deepspeed_groups


def lr_lambda(cfg: TrainerConfig, total_steps: int):
    """Linear warmup, then constant, cosine or linear decay to 0 over the remaining steps."""
    def fn(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        if cfg.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
        if cfg.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress
    return fn


def deepspeed_config(cfg: TrainerConfig, bf16: bool) -> dict[str, Any]:
    """The engine config generated from the recipe; `trainer.deepspeed` overrides any key."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.zero_stage == 3:
        zero.update(stage3_gather_16bit_weights_on_model_save=True)
    if cfg.offload and cfg.zero_stage >= 2:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if cfg.zero_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": 1,
        "gradient_accumulation_steps": 1,
        "gradient_clipping": cfg.grad_clip,
        "zero_optimization": zero,
        "bf16": {"enabled": bf16},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
    return _merge(config, cfg.deepspeed)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def micro_batches(lengths: list[int], size: int, budget: int | None,
                  padded: bool = False) -> list[list[int]]:
    """Split sequence indices into micro-batches: `size` at a time, or filled to a token budget.

    Sequences are sorted by length. A budget counts real tokens, since `sequences.pack` packs a
    micro-batch into one row without padding; `padded=True` counts rows x longest instead, the
    cost of the padded layout. A sequence longer than the budget gets a micro-batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    if budget is None:
        return [order[i:i + size] for i in range(0, len(order), size)]
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i in order:
        cost = (len(current) + 1) * lengths[i] if padded else used + lengths[i]
        if current and cost > budget:
            batches.append(current)
            current, used = [], 0
        current.append(i)
        used += lengths[i]
    if current:
        batches.append(current)
    return batches


class Learner:
    """Owns the engine, optimizer and schedule of one model; steps on micro-batch losses."""

    def __init__(self, model: torch.nn.Module, cfg: TrainerConfig, total_steps: int,
                 lr: float | None = None, betas: tuple[float, float] = (0.9, 0.99)) -> None:
        import deepspeed

        self.cfg = cfg
        params = [p for p in model.parameters() if p.requires_grad]
        bf16 = next(model.parameters()).dtype == torch.bfloat16
        optimizer = torch.optim.AdamW(params, lr=lr or cfg.lr, weight_decay=cfg.weight_decay,
                                      betas=betas, eps=1e-8)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps))
        forget_stale_deepspeed_groups()
        self.engine, self.optimizer, _, self.scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler,
            config=deepspeed_config(cfg, bf16))

    @property
    def module(self) -> torch.nn.Module:
        return self.engine.module

    @property
    def step_count(self) -> int:
        return self.engine.global_steps

    def micro_batches(self, lengths: list[int]) -> list[list[int]]:
        """This learner's split of sequence indices into micro-batches (see `micro_batches`)."""
        return micro_batches(lengths, self.cfg.micro_batch_size, self.cfg.micro_batch_tokens)

    def backward(self, loss: torch.Tensor, last: bool) -> None:
        """Accumulate one micro-batch's (pre-scaled) loss; `last` marks the step boundary."""
        self.engine.set_gradient_accumulation_boundary(last)
        self.engine.backward(loss)

    def step(self) -> dict[str, float]:
        """Apply the accumulated gradients; returns grad norm and learning rate."""
        self.engine.set_gradient_accumulation_boundary(True)
        own_norm = None
        if self.cfg.zero_stage == 0:  # the engine does not record the norm without ZeRO
            grads = [p.grad for p in self.module.parameters() if p.grad is not None]
            own_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        norm = own_norm if norm is None else norm
        return {"grad_norm": float(norm) if norm is not None else float("nan"),
                "learning_rate": float(self.scheduler.get_last_lr()[0])}

    def train(self) -> None:
        self.engine.train()

    @contextmanager
    def full_weights(self) -> Iterator[torch.nn.Module]:
        """The module with every parameter materialised (ZeRO-3 gathers its shards)."""
        if self.cfg.zero_stage == 3:
            import deepspeed
            with deepspeed.zero.GatheredParameters(list(self.module.parameters()), modifier_rank=None):
                yield self.module
        else:
            yield self.module

    def state_dict_for_save(self) -> dict[str, torch.Tensor] | None:
        """A full state dict for an HF save (None: the module's own state is complete)."""
        if self.cfg.zero_stage == 3:
            return self.engine._zero3_consolidated_16bit_state_dict()
        return None
