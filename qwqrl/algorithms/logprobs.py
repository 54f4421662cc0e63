"""Per-token log-probabilities and entropy from LM logits without a full (B, T, V) softmax copy.

A 32B-class model has V ~ 150k; a (B, T, V) float32 log_softmax for B*T = 64k tokens is ~40 GB.
`selective_log_softmax` gathers the chosen token's logit and subtracts a row-wise logsumexp
(log p(y) = z_y - logsumexp(z)), looping over the leading dimension so only one (T, V) slab is
live at a time. `entropy_from_logits` does the same in row chunks: H = logsumexp(z) - sum(p * z).
`chunked_token_logprobs` goes one step earlier, from hidden states through the LM head in token
chunks (verl's `entropy_from_logits_with_chunking`, NeMo-RL's `logprob_chunk_size`, prime-rl's
fused LM head): the (T, V) logits of a long completion never exist at once, forward or backward.
"""
from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint


def selective_log_softmax(logits: torch.Tensor, index: torch.Tensor,
                          temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / temperature)[index] per position.

    logits: (B, T, V) float; index: (B, T) long token ids -> (B, T) log-probs, dtype of `logits`.
    Equivalent to `logits.log_softmax(-1).gather(-1, index[..., None])[..., 0]`. float32/float64
    logits use gather - logsumexp (exact, no (B, T, V) temporary); bf16/fp16 rows are upcast to
    float32 one sequence at a time, since logsumexp in half precision loses ~1e-2 nats.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    out = []
    for row_logits, row_index in zip(logits, index):  # one (T, V) slab at a time
        row_logits = row_logits.float() if row_logits.dtype in (torch.float16, torch.bfloat16) else row_logits
        if temperature != 1.0:
            row_logits = row_logits / temperature
        chosen = row_logits.gather(-1, row_index.unsqueeze(-1)).squeeze(-1)
        out.append(chosen - torch.logsumexp(row_logits, dim=-1))
    return torch.stack(out).to(logits.dtype)


def entropy_from_logits(logits: torch.Tensor, chunk_size: int = 128) -> torch.Tensor:
    """Shannon entropy (nats) of softmax(logits) over the last axis.

    logits: (..., V) -> (...). Processes `chunk_size` rows at a time, so the peak extra memory is
    (chunk_size, V) rather than a copy of `logits`. Meant as a metric; it is differentiable.
    """
    flat = logits.reshape(-1, logits.shape[-1])
    out = []
    for chunk in flat.split(chunk_size):
        chunk = chunk.float()
        lse = torch.logsumexp(chunk, dim=-1, keepdim=True)
        probs = torch.exp(chunk - lse)
        out.append(lse.squeeze(-1) - (probs * chunk).sum(-1))
    return torch.cat(out).reshape(logits.shape[:-1]).to(logits.dtype)


def chunked_token_logprobs(hidden: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
                           targets: torch.Tensor, temperature: float = 1.0, chunk_size: int = 1024,
                           with_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(head(hidden) / temperature)[targets], never holding more than one chunk's logits.

    hidden: (N, H) final hidden states; head: the LM head (a module: LoRA-wrapped or ZeRO-3
    partitioned is fine, it is called per chunk); targets: (N,) ids -> (log-probs (N,) float32,
    entropy (N,) float32 detached, or None). Each `chunk_size` rows go through the head inside a
    non-reentrant checkpoint, so the forward keeps only the chunk's inputs and backward recomputes
    its (chunk, V) logits: peak memory is a few (chunk, V) float32 slabs instead of (N, V) logits,
    their log-softmax and their gradient. The entropy is computed in the same pass (a metric).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    grad = torch.is_grad_enabled()
    logprobs, entropies = [], []
    for h, y in zip(hidden.split(chunk_size), targets.split(chunk_size)):
        if grad:
            lp, ent = checkpoint(_chunk_logprobs, h, y, head, temperature, with_entropy,
                                 use_reentrant=False)
        else:
            lp, ent = _chunk_logprobs(h, y, head, temperature, with_entropy)
        logprobs.append(lp)
        entropies.append(ent)
    if not logprobs:  # no tokens: keep the graph connected to `hidden` for an empty backward
        empty = hidden.sum(-1).float() * 0.0
        return empty, (empty.detach() if with_entropy else None)
    return torch.cat(logprobs), (torch.cat(entropies) if with_entropy else None)


def _chunk_logprobs(h: torch.Tensor, y: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor],
                    temperature: float, with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    logits = head(h).float()
    if temperature != 1.0:  # in place: one (chunk, V) slab fewer; the head's backward needs no output
        logits = logits.div_(temperature)
    lse = torch.logsumexp(logits, dim=-1)
    logprobs = logits.gather(-1, y.unsqueeze(-1)).squeeze(-1) - lse
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = lse - (torch.softmax(logits, dim=-1) * logits).sum(-1)
    return logprobs, entropy
