"""Per-token log-probabilities and entropy from LM logits without a full (B, T, V) softmax copy.

A 32B-class model has V ~ 150k; a (B, T, V) float32 log_softmax for B*T = 64k tokens is ~40 GB.
`selective_log_softmax` gathers the chosen token's logit and subtracts a row-wise logsumexp
(log p(y) = z_y - logsumexp(z)), looping over the leading dimension so only one (T, V) slab is
live at a time. `entropy_from_logits` does the same in row chunks: H = logsumexp(z) - sum(p * z).
"""

import torch


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
