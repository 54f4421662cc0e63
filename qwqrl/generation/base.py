"""What every generation backend takes and returns: `SamplingParams`, `Rollout`, `Generator`.

The trainer talks to rollouts only through these three names, so the HF backend (CPU demo,
tests, small GPU runs) and the vLLM backend (real runs) are interchangeable in a recipe.

Log-prob convention, shared by both backends: `Rollout.logprobs[t]` is the log-probability of
the sampled token under the distribution the token was actually drawn from, i.e. the logits
divided by the temperature, then restricted to top-k and to the top-p nucleus, renormalised
(vLLM's `logprobs_mode="processed_logprobs"`, HF's processed `scores`). This is the behaviour
policy an importance-sampling correction must divide by. vLLM can return no other
temperature-aware log-prob, which is why HF follows vLLM and not the other way round. When
top-k and top-p filter nothing (`top_k=0`, `top_p=1.0`) it equals the learner's
`log_softmax(logits / T)`; otherwise it is that value minus the log of the kept mass (so never
smaller). Greedy decoding (temperature 0) records the untempered `log_softmax(logits)`.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class SamplingParams:
    """How to sample completions; the defaults are QwQ's recommended settings.

    temperature: 0 means greedy (top_p/top_k are then ignored). top_k: 0 disables it.
    max_new_tokens: completion budget; a completion that uses it all ends with "length".
    stop: extra stop strings (EOS always stops). seed: makes sampling reproducible.
    """

    max_new_tokens: int = 256
    temperature: float = 0.6
    top_p: float = 0.95
    top_k: int = 20
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0 (0 disables it), got {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        object.__setattr__(self, "stop", tuple(self.stop))  # accept a list from a recipe

    @property
    def greedy(self) -> bool:
        """True when decoding takes the argmax (temperature 0)."""
        return self.temperature == 0

    @classmethod
    def make_greedy(cls, max_new_tokens: int = 256, **kwargs: Any) -> SamplingParams:
        """Greedy decoding, e.g. for evaluation."""
        return cls(max_new_tokens=max_new_tokens, temperature=0.0, **kwargs)


@dataclass
class ToolStats:
    """What happened in a rollout that had tools (`qwqrl.tools`): calls made, calls that
    failed (error text returned), assistant turns generated, and whether it stopped because
    its last allowed turn asked for tools (`tools.max_turns`)."""

    calls: int = 0
    errors: int = 0
    turns: int = 1
    hit_max_turns: bool = False


@dataclass
class Rollout:
    """One sampled completion of one prompt.

    completion_ids has no padding and ends at the first EOS (included) when one was produced.
    logprobs: one per completion token, under the sampling distribution (module docstring).
    text: `tokenizer.decode(completion_ids, skip_special_tokens=True)`; `<think>`/`</think>` are
    ordinary tokens and stay. finish_reason: "stop" (EOS or a stop string) or "length".
    action_mask: with tools, one per completion token: 1 = the model sampled it, 0 = a tool
    response the loop inserted (context, not an action; its logprob is a 0.0 placeholder).
    None: every token is the model's. tool_stats: None when the stage gave no tools.
    """

    prompt_index: int
    prompt_ids: list[int]
    completion_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str
    policy_version: int = 0  # learner updates before the weights that sampled it (trainer-set)
    action_mask: list[int] | None = None
    tool_stats: ToolStats | None = None

    def model_mask(self) -> list[int]:
        """1 per completion token the model sampled (all of them without tools)."""
        return self.action_mask if self.action_mask is not None else [1] * len(self.completion_ids)


def encode_prompts(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    """Token ids of chat-templated prompts, exactly as the learner will see them: the template
    already wrote every special token, so none are added (an extra BOS would shift positions)."""
    return [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]


@runtime_checkable
class Generator(Protocol):
    """A rollout engine. `generate` returns len(prompts) * n rollouts, prompt 0's n first."""

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        """Sample n completions for each chat-templated prompt (the text already ends with the
        generation prompt; no special tokens are added)."""
        ...

    def generate_stream(self, prompts: list[str], n: int,
                        sampling: SamplingParams) -> Iterator[list[Rollout]]:
        """Like `generate`, but yields each prompt's n rollouts as soon as all n have finished,
        in any order, so scoring can start while the rest generate (each prompt exactly once)."""
        ...

    def sync_weights(self, model: Any) -> None:
        """Make the next `generate` use `model`'s current weights."""
        ...

    def sleep(self) -> None:
        """Free generator memory before a learner update."""
        ...

    def wake_up(self) -> None:
        """Restore what `sleep` freed."""
        ...


def stream_by_prompt(rollouts: list[Rollout], n: int) -> Iterator[list[Rollout]]:
    """`generate`'s prompt-major list as `generate_stream`'s groups: for a generator that only
    finishes all at once (nothing overlaps, but the caller's streaming path still works)."""
    for start in range(0, len(rollouts), n):
        yield rollouts[start:start + n]


def shares_module(generator: Any, module: Any) -> bool:
    """True when `generator` samples with the learner's own module (`HFGenerator`): it cannot
    generate while the learner updates, so asynchronous rollouts need a copy or a worker."""
    from qwqrl.generation.weights import unwrap_model

    return getattr(generator, "model", None) is unwrap_model(module)
