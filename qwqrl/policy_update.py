"""The policy update of one RL step: a function of the learner, the batch and the settings.

1. Micro-batches by count or token budget (`Learner.micro_batches`), each packed into one row
   without padding (`sequences.pack`).
2. Log-probs that stay fixed during the update: the policy's own before its first step (only
   with `epochs > 1`; in one epoch the ratio's denominator is the detached current value), the
   reference's (KL, when beta > 0) and the generator's (the off-policy correction, truncated
   or masked IS, against vLLM's numbers or an older policy's in asynchronous RL).
3. Advantages: GRPO (group / batch / no std = Dr.GRPO) or RLOO from the outcome rewards, per
   sequence; PPO's per-token GAE with the critic (`qwqrl.critic`).
4. `epochs` passes of the clipped surrogate (clip-higher, dual clip, KL term, TIS); each
   micro-batch's loss is weighted by its share of the batch (tokens, sequences or rows, as
   `loss_agg` counts), so accumulated gradients equal the full-batch loss's; one optimizer step
   per epoch, and one critic step after it for PPO.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from qwqrl import algorithms as alg
from qwqrl.config import AlgorithmConfig, RLStage
from qwqrl.critic import Critic
from qwqrl.learner import Learner
from qwqrl.rollouts import Batch
from qwqrl.sequences import Packed, completion_logprobs, pack


@dataclass(frozen=True)
class UpdateSettings:
    algo: AlgorithmConfig
    temperature: float         # the sampling temperature: log-probs are of the same distribution
    max_new_tokens: int        # the constant of `seq-mean-token-sum-norm`
    pad_token_id: int
    generator_logprobs: bool   # behaviour log-probs not the learner's (vLLM, async): correct them
    device: torch.device
    logprob_chunk_size: int | None = None  # tokens per LM-head chunk (None: the schema's default)

    @classmethod
    def for_stage(cls, stage: RLStage, pad_token_id: int, device: torch.device) -> UpdateSettings:
        gen = stage.generation
        return cls(stage.algorithm, gen.temperature or 1.0, gen.max_new_tokens, pad_token_id,
                   gen.backend == "vllm" or stage.algorithm.off_policy.max_staleness > 0, device,
                   stage.trainer.logprob_chunk_size)


@dataclass
class MicroBatches:
    """A batch cut into micro-batches, with what every epoch's loss needs for each."""
    index: list[list[int]]          # rows of the batch in each micro-batch
    packs: list[Packed]
    masks: list[torch.Tensor]       # loss masks: the model's own completion tokens (not tool
                                    # responses) of valid (kept) samples
    shares: list[float]             # each micro-batch's weight in the full-batch loss
    gen_lp: list[torch.Tensor]      # the generator's log-probs, padded like the completions


def policy_update(policy: Learner, batch: Batch, settings: UpdateSettings,
                  reference: torch.nn.Module | None = None,
                  critic: Critic | None = None) -> dict[str, float]:
    """`epochs` optimizer steps of the policy (and the critic) on `batch`; the step's metrics."""
    if not all_ranks_have(bool(batch.rollouts)):
        return {"loss": 0.0, "grad_norm": 0.0, "skipped_empty_batch": 1.0,
                "learning_rate": float(policy.scheduler.get_last_lr()[0])}
    algo, temp = settings.algo, settings.temperature
    rewards = batch.rewards.to(settings.device)
    valid = ~torch.isnan(rewards)
    mbs = micro_batches(policy, batch, valid, settings)
    chunk = settings.logprob_chunk_size
    old_lp = _no_grad_logprobs(policy.module, mbs.packs, temp, chunk) if algo.epochs > 1 else None
    ref_lp = _no_grad_logprobs(reference, mbs.packs, temp, chunk) if reference is not None else None
    extra: dict[str, float] = {}
    if critic is not None:
        clean = torch.where(valid, rewards, torch.zeros_like(rewards))
        advantages, returns, values_old, extra = critic.advantages(
            policy.module, mbs.packs, [clean[mb] for mb in mbs.index], ref_lp, temp)
    else:
        per_sequence = outcome_advantages(rewards, valid, algo)
        advantages = [per_sequence[mb] for mb in mbs.index]
    sums: dict[str, float] = {}
    policy.train()
    for epoch in range(algo.epochs):
        _policy_epoch(policy, mbs, advantages, old_lp, ref_lp, settings, epoch, sums)
        step_metrics = policy.step()
        if critic is not None:
            step_metrics.update(critic.epoch(mbs.packs, mbs.masks, mbs.shares, returns, values_old))
    out = {k: v / algo.epochs for k, v in sums.items()}
    out.update(step_metrics)
    out.update(extra)
    return out


def all_ranks_have(samples: bool) -> bool:
    """Whether every data-parallel rank has samples to learn from. A rank with none cannot join
    the others' gradient all-reduce, and one that steps alone waits for it until the collective
    times out: so when any rank's batch is empty (every group filtered or masked, e.g. while the
    reward model is down), every rank skips the step."""
    if not torch.distributed.is_initialized() or torch.distributed.get_world_size() == 1:
        return samples
    flag = torch.tensor([float(samples)])
    if torch.distributed.get_backend() == "nccl":
        flag = flag.cuda()
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MIN)
    return bool(flag.item())


def outcome_advantages(rewards: torch.Tensor, valid: torch.Tensor,
                       algo: AlgorithmConfig) -> torch.Tensor:
    """(B,) sequence advantages of the outcome methods (GRPO, Dr.GRPO, RLOO)."""
    if algo.name == "rloo":
        return alg.rloo_advantages(rewards, algo.num_generations, valid=valid)
    scale = "none" if algo.name == "dr_grpo" else algo.scale_rewards
    return alg.grpo_advantages(rewards, algo.num_generations, scale=scale, valid=valid)


def micro_batches(policy: Learner, batch: Batch, valid: torch.Tensor,
                  settings: UpdateSettings) -> MicroBatches:
    device = settings.device
    prompts = [r.prompt_ids for r in batch.rollouts]
    comps = [r.completion_ids for r in batch.rollouts]
    index = policy.micro_batches([len(p) + len(c) for p, c in zip(prompts, comps)])
    packs = [pack([prompts[i] for i in mb], [comps[i] for i in mb], settings.pad_token_id, device)
             for mb in index]
    truncated = torch.tensor([r.finish_reason == "length" for r in batch.rollouts], device=device)
    masks = [alg.loss_mask(p.completion_mask.float(), valid[mb],
                           truncated[mb] if settings.algo.mask_truncated else None,
                           _pad_rows([batch.rollouts[i].model_mask() for i in mb], p.width, device))
             for mb, p in zip(index, packs)]
    gen_lp = [_pad_rows([batch.rollouts[i].logprobs for i in mb], p.width, device)
              for mb, p in zip(index, packs)]
    return MicroBatches(index, packs, masks, _shares(masks, settings.algo.loss_agg), gen_lp)


def _policy_epoch(policy: Learner, mbs: MicroBatches, advantages: list[torch.Tensor],
                  old_lp: list[torch.Tensor] | None, ref_lp: list[torch.Tensor] | None,
                  settings: UpdateSettings, epoch: int, sums: dict[str, float]) -> None:
    """Accumulate one epoch's gradients over the micro-batches; add its metrics to `sums`."""
    algo = settings.algo
    kl_in_loss = ref_lp is not None and algo.kl.mode == "loss"
    for k, p in enumerate(mbs.packs):
        lp, entropy = completion_logprobs(policy.engine, p, settings.temperature,
                                          with_entropy=epoch == 0, chunk_size=settings.logprob_chunk_size)
        old = old_lp[k] if old_lp is not None else lp.detach()
        is_w = None
        if settings.generator_logprobs:
            off = algo.off_policy
            is_w, is_metrics = alg.off_policy_weights(old, mbs.gen_lp[k], mbs.masks[k], off.correction,
                                                      algo.tis_cap, off.mask_low, off.mask_high)
            _add(sums, is_metrics, weight=mbs.shares[k])  # min/max: share-weighted over micro-batches
        loss, m = alg.clipped_policy_loss(
            lp, old, advantages[k], mbs.masks[k], eps_low=algo.epsilon_low,
            eps_high=algo.epsilon_high, clip_ratio_c=algo.dual_clip, agg=algo.loss_agg,
            max_len=settings.max_new_tokens, ref_logprobs=ref_lp[k] if kl_in_loss else None,
            kl_coef=algo.kl.beta if kl_in_loss else 0.0, kl_estimator=algo.kl.estimator,
            is_weights=is_w)
        policy.backward(loss * mbs.shares[k], last=k == len(mbs.packs) - 1)
        m["loss"] = loss.detach()
        if entropy is not None:
            m["entropy"] = alg.masked_mean(entropy, mbs.masks[k])
        _add(sums, m, weight=mbs.shares[k])


def _shares(masks: list[torch.Tensor], agg: str) -> list[float]:
    """Each micro-batch's weight, so the summed micro losses equal the full-batch loss."""
    tokens = float(sum(m.sum() for m in masks))
    seqs = float(sum((m.sum(-1) > 0).sum() for m in masks))
    rows = float(sum(m.shape[0] for m in masks))
    if agg == "token-mean":
        return [float(m.sum()) / max(1.0, tokens) for m in masks]
    if agg == "seq-mean-token-sum-norm":
        return [m.shape[0] / max(1.0, rows) for m in masks]
    return [float((m.sum(-1) > 0).sum()) / max(1.0, seqs) for m in masks]


def _no_grad_logprobs(model: torch.nn.Module, packs: list[Packed], temperature: float,
                      chunk_size: int | None = None) -> list[torch.Tensor]:
    with torch.no_grad():
        return [completion_logprobs(model, p, temperature, chunk_size=chunk_size)[0] for p in packs]


def _pad_rows(rows: list[list[float]], width: int, device: torch.device) -> torch.Tensor:
    out = torch.zeros(len(rows), width, device=device)
    for i, row in enumerate(rows):
        out[i, :len(row)] = torch.tensor(row[:width], device=device)
    return out


def _add(sums: dict[str, float], metrics: dict[str, Any], weight: float = 1.0) -> None:
    for k, v in metrics.items():
        sums[k] = sums.get(k, 0) + float(v) * weight
