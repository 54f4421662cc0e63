"""The PPO critic: GAE advantages from its values, and its clipped value-loss update.

PPO (`algorithm.name: ppo`) is the one method here with token-level advantages. The outcome reward
sits on the last completion token (minus a per-token KL penalty when `kl.mode` is `reward`), the
critic (a value head on the policy's backbone, `models.critic_model`) estimates each token's
value, and GAE(gamma, lambda) turns both into advantages, whitened over the whole batch (not per
micro-batch). After each policy epoch the critic takes one step on the clipped value loss
against the returns, with the same micro-batch weights as the policy.
"""
from __future__ import annotations

import torch

from qwqrl import algorithms as alg
from qwqrl.config import AlgorithmConfig
from qwqrl.learner import Learner
from qwqrl.sequences import Packed, completion_logprobs, completion_values


Tensors = list[torch.Tensor]  # one per micro-batch


class Critic:
    def __init__(self, learner: Learner, algo: AlgorithmConfig) -> None:
        self.learner, self.algo = learner, algo

    def advantages(self, policy: torch.nn.Module, packs: list[Packed], rewards: list[torch.Tensor],
                   ref_lp: list[torch.Tensor] | None, temperature: float,
                   ) -> tuple[Tensors, Tensors, Tensors, dict[str, float]]:
        """Per micro-batch (b, T) advantages, returns and old values, and the mean value.

        rewards: per micro-batch (b,) outcome rewards, masked samples as 0 (their loss mask is 0).
        """
        algo = self.algo
        advs, rets, vals = [], [], []
        with torch.no_grad():
            for k, p in enumerate(packs):
                mask = p.completion_mask.float()
                if ref_lp is not None and algo.kl.mode == "reward":
                    lp, _ = completion_logprobs(policy, p, temperature)
                    tok_r = alg.kl_penalized_token_rewards(rewards[k], mask, lp, ref_lp[k],
                                                           algo.kl.beta, algo.kl.estimator)
                else:
                    tok_r = alg.outcome_token_rewards(rewards[k], mask)
                v = completion_values(self.learner.module, p).float()
                a, r = alg.gae_advantages(tok_r, v, mask, gamma=algo.gamma, lam=algo.lam)
                advs.append(a); rets.append(r); vals.append(v)
        masks = [p.completion_mask.float() for p in packs]
        joined = torch.cat([a[m.bool()] for a, m in zip(advs, masks)])
        mean, std = joined.mean(), joined.std().clamp(min=1e-8)
        advs = [(a - mean) / std * m for a, m in zip(advs, masks)]
        value_mean = float(torch.cat([v[m.bool()] for v, m in zip(vals, masks)]).mean())
        return advs, rets, vals, {"critic/value_mean": value_mean}

    def epoch(self, packs: list[Packed], masks: list[torch.Tensor], shares: list[float],
              returns: list[torch.Tensor], values_old: list[torch.Tensor]) -> dict[str, float]:
        """One optimizer step of the clipped value loss over the batch's micro-batches."""
        self.learner.train()
        out: dict[str, float] = {}
        for k, p in enumerate(packs):
            v = completion_values(self.learner.engine, p).float()
            loss, m = alg.clipped_value_loss(v, values_old[k], returns[k], masks[k],
                                             clip_range=self.algo.value_clip)
            self.learner.backward(loss * shares[k], last=k == len(packs) - 1)
            m["critic/loss"] = loss.detach()
            for key, value in m.items():
                out[key] = out.get(key, 0) + float(value) * shares[k]
        out["critic/grad_norm"] = self.learner.step()["grad_norm"]
        return out
