"""Independent reference computations the generators' log-probs are checked against."""
import torch

from qwqrl.generation import Rollout, SamplingParams


def teacher_forced_logits(model, rollout: Rollout) -> torch.Tensor:
    """(len(completion), V) float32 logits predicting each completion token, from one unpadded pass."""
    device = next(model.parameters()).device
    ids = torch.tensor([rollout.prompt_ids + rollout.completion_ids], device=device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    return logits[len(rollout.prompt_ids) - 1:-1]


def chosen(logprobs: torch.Tensor, rollout: Rollout) -> torch.Tensor:
    """Pick each completion token's entry from (len(completion), V) log-probs."""
    index = torch.tensor(rollout.completion_ids, device=logprobs.device)[:, None]
    return logprobs.gather(-1, index).squeeze(-1)


def processed_logprobs(logits: torch.Tensor, s: SamplingParams) -> torch.Tensor:
    """log-softmax after temperature, top-k, then the top-p nucleus (untempered when greedy)."""
    if s.greedy:
        return logits.log_softmax(-1)
    z = logits / s.temperature
    if s.top_k:
        kth = z.topk(s.top_k, dim=-1).values[:, -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    probs, order = z.softmax(-1).sort(-1, descending=True)
    mass_before = probs.cumsum(-1) - probs
    drop = torch.zeros_like(z, dtype=torch.bool).scatter(-1, order, mass_before >= s.top_p)
    return z.masked_fill(drop, float("-inf")).log_softmax(-1)


def expected_logprobs(model, rollout: Rollout, sampling: SamplingParams) -> torch.Tensor:
    """What `rollout.logprobs` must equal if `model` sampled it with `sampling`."""
    return chosen(processed_logprobs(teacher_forced_logits(model, rollout), sampling), rollout).cpu()
