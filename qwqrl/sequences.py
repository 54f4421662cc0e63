"""Rollouts as model inputs, and the learner-side log-probs and values of their completion tokens.

Two layouts of a micro-batch, one interface (`Packed`):
- padding-free (the default): every prompt + completion concatenated into one row, with
  position ids restarting at 0 for each sequence and no attention mask. transformers reads the
  restarts as sequence boundaries (flash-attention varlen on GPU; the `qwqrl_packed` kernel that
  `models` selects in place of sdpa attends one sequence at a time), so no compute is spent on
  padding and a token budget counts real tokens (verl's `use_remove_padding`, OpenRLHF's packing).
- padded: prompts left-padded to the micro-batch's longest prompt, completions right-padded to
  its longest completion, as in generation; kept as the reference the packed path is tested
  against.
Either way the loss functions see (b, T) tensors: `completion_ids` / `completion_mask` right-
padded to the longest completion, and `source` says which model output position predicts each
completion token, so per-sequence views are gathered from the packed row.

Log-probs never materialise (T, V) logits: the final hidden states of the real completion tokens
go through the LM head in chunks of `chunk_size` tokens (`algorithms.chunked_token_logprobs`).
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from qwqrl.algorithms import chunked_token_logprobs
from qwqrl.config import TrainerConfig

DEFAULT_CHUNK_SIZE: int = TrainerConfig.model_fields["logprob_chunk_size"].default


@dataclass
class Packed:
    input_ids: torch.Tensor               # (rows, L): (1, sum of lengths) padding-free, (b, P + T) padded
    attention_mask: torch.Tensor | None   # (rows, L) for the padded layout; None when packed
    position_ids: torch.Tensor            # (rows, L), restarting at 0 for each sequence
    completion_ids: torch.Tensor          # (b, T) right-padded
    completion_mask: torch.Tensor         # (b, T) 1 on real completion tokens
    source: torch.Tensor                  # (b, T) index into the flattened (rows * L) outputs of
                                          # the position predicting each completion token (0 on pads)

    @property
    def width(self) -> int:
        return self.completion_ids.shape[1]


def pack(prompts: list[list[int]], completions: list[list[int]], pad_id: int,
         device: torch.device, padding_free: bool = True) -> Packed:
    """One micro-batch as model inputs; `padding_free=False` gives the padded layout."""
    if any(not p for p in prompts):
        raise ValueError("pack: every sequence needs at least one prompt token (the first "
                         "completion token is predicted from the prompt's last position)")
    b = len(prompts)
    T = max(1, max(len(c) for c in completions))
    comp_ids = torch.full((b, T), pad_id, dtype=torch.long)
    comp_mask = torch.zeros((b, T), dtype=torch.long)
    source = torch.zeros((b, T), dtype=torch.long)
    for i, c in enumerate(completions):
        comp_ids[i, :len(c)] = torch.tensor(c, dtype=torch.long)
        comp_mask[i, :len(c)] = 1
    if padding_free:
        ids = torch.tensor([t for p, c in zip(prompts, completions) for t in (*p, *c)],
                           dtype=torch.long)[None]
        position_ids = torch.cat([torch.arange(len(p) + len(c)) for p, c in zip(prompts, completions)])[None]
        attn = None
        start = 0
        for i, (p, c) in enumerate(zip(prompts, completions)):
            source[i, :len(c)] = torch.arange(start + len(p) - 1, start + len(p) - 1 + len(c))
            start += len(p) + len(c)
    else:
        P = max(len(p) for p in prompts)
        ids = torch.full((b, P + T), pad_id, dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, (p, c) in enumerate(zip(prompts, completions)):
            ids[i, P - len(p):P] = torch.tensor(p, dtype=torch.long)
            ids[i, P:P + len(c)] = comp_ids[i, :len(c)]
            attn[i, P - len(p):P + len(c)] = 1
            source[i, :len(c)] = i * (P + T) + P - 1 + torch.arange(len(c))
        position_ids = (attn.cumsum(-1) - 1).clamp(min=0)
        attn = attn.to(device)
    return Packed(ids.to(device), attn, position_ids.to(device), comp_ids.to(device),
                  comp_mask.to(device), source.to(device))


def completion_logprobs(model: torch.nn.Module, batch: Packed, temperature: float,
                        with_entropy: bool = False, chunk_size: int | None = None,
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (b, T) float32 of the completion under log_softmax(logits / temperature).

    Returns (logprobs, entropy or None), 0 on padding; entropy is detached, for metrics. `model`
    is a causal LM, its peft wrapper or a DeepSpeed engine around either; `chunk_size` (tokens per
    LM-head chunk, the recipe's `trainer.logprob_chunk_size`) bounds the logits held at once.
    """
    hidden = _final_hidden_states(model, batch)
    mask = batch.completion_mask.bool()
    rows = hidden.reshape(-1, hidden.shape[-1])[batch.source[mask]]
    head = _unwrap(model).get_output_embeddings()
    lp, entropy = chunked_token_logprobs(rows, head, batch.completion_ids[mask],
                                         temperature if temperature > 0 else 1.0,
                                         chunk_size or DEFAULT_CHUNK_SIZE, with_entropy)
    zeros = torch.zeros(mask.shape, dtype=torch.float32, device=lp.device)
    return (zeros.masked_scatter(mask, lp),
            zeros.masked_scatter(mask, entropy) if entropy is not None else None)


def completion_values(critic: torch.nn.Module, batch: Packed) -> torch.Tensor:
    """Critic values (b, T): V at the state before each completion token is chosen (0 on padding)."""
    out = critic(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                 position_ids=batch.position_ids, use_cache=False)
    return out.logits[..., 0].reshape(-1)[batch.source] * batch.completion_mask


def _final_hidden_states(model: torch.nn.Module, batch: Packed) -> torch.Tensor:
    """(rows, L, H) hidden states after the final norm, from one call of the whole model.

    The model is called as a whole (not its backbone) so DeepSpeed's and peft's forward wrappers
    run as usual; a hook on the backbone keeps its output, and `logits_to_keep=1` makes the
    model's own LM head cost one position per row.
    """
    with _capture_output(_unwrap(model).get_decoder()) as captured:
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
              position_ids=batch.position_ids, logits_to_keep=1, use_cache=False)
    return captured[0]


@contextmanager
def _capture_output(module: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    captured: list[torch.Tensor] = []
    handle = module.register_forward_hook(
        lambda _m, _args, out: captured.append(out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]))
    try:
        yield captured
    finally:
        handle.remove()


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DeepSpeed engine (a peft model passes its attributes through)."""
    deepspeed = sys.modules.get("deepspeed")
    if deepspeed is not None and isinstance(model, deepspeed.DeepSpeedEngine):
        return model.module
    return model
