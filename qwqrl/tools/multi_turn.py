"""Multi-turn rollouts with tools: generate, run the calls, append the responses, go on.

`ToolRolloutGenerator` wraps a `Generator` (HF or vLLM) and is one itself, so the rollout
collector, the trainer and evaluation use it unchanged. Per sample, each turn:

1. The model continues from the token ids so far, with `</tool_call>` as an extra stop string.
   Everything is token level: the context of turn k is the prompt's ids + every earlier token
   id, never a re-tokenised text, so what the learner scores is exactly what was sampled.
2. A turn that stopped at `</tool_call>` asks for tools. Its calls are the `<tool_call>` blocks
   after the turn's last `</think>` (the whole turn when it has none, i.e. a model that calls
   from inside its reasoning is answered too), parsed by `verifiers.tool_call.parse_calls`; a
   malformed block is answered with an error text, like a failing tool.
3. All calls of all samples run concurrently, each under `timeout_s` (`Toolset.run_calls`);
   failures come back as `error: ...` text, never as exceptions.
4. The responses are appended as one tool turn, rendered by the tokenizer's chat template
   (`chat_template.tool_response_text`): the assistant turn is closed (`<|im_end|>`), a user turn
   holds the `<tool_response>` blocks, and a new assistant turn opens with the template's
   generation prompt, which for QwQ's forces `<think>\\n` again: each turn reasons afresh, and
   the answer the verifiers judge is the one after the last `</think>`, in the last turn.
   These tokens are context, not actions: `Rollout.action_mask` is 0 on them and their
   `logprobs` are 0.0 placeholders, masked out of every loss.

A sample ends at EOS (finish "stop"), when it runs out of tokens (finish "length"), or when its
`max_turns`-th turn still asks for tools (finish "stop", unanswered, `hit_max_turns`).

Token budget: `sampling.max_new_tokens` bounds the whole completion, model tokens and tool
responses together, so a sequence never outgrows what the learner and the engine were sized
for. Each turn gets what is left; a tool response that would leave no room for one more model
token is not appended and the sample ends with finish "length" (the overlong logic then
applies to it as to any truncated sample).

Distributed: every rank runs the same number of turns (an all-reduce decides whether any rank
still has active samples), because a vLLM tensor-parallel group must submit together.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from qwqrl.chat_template import tool_response_text
from qwqrl.generation.base import Rollout, SamplingParams, ToolStats, encode_prompts, stream_by_prompt
from qwqrl.tools.toolset import ToolResult, Toolset
from qwqrl.verifiers.tool_call import CALL_CLOSE, Malformed, parse_calls

_TURN_SEED_STRIDE = 1_000_003  # turn k samples with seed + k * stride: fresh streams per turn


@dataclass
class _Sample:
    """A completion being built, turn by turn."""
    prompt_index: int
    prompt_ids: list[int]
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    mask: list[int] = field(default_factory=list)
    stats: ToolStats = field(default_factory=lambda: ToolStats(turns=0))
    finish: str | None = None  # set when the sample is done

    def extend(self, ids: list[int], logprobs: list[float], action: int) -> None:
        self.ids += ids
        self.logprobs += logprobs
        self.mask += [action] * len(ids)


def calls_of(turn_text: str) -> list[dict[str, Any] | str]:
    """The calls a turn asks for (module docstring, step 2); a malformed turn gives one string,
    the reason, which the toolset answers as an error."""
    try:
        return list(parse_calls(turn_text.split("</think>")[-1]))
    except Malformed as e:
        return [str(e)]


class ToolRolloutGenerator:
    """A `Generator` whose samples may call `toolset`'s tools (module docstring).

    generator: needs `generate_ids(prompt_ids, sampling, max_new_tokens)` (both backends have it).
    """

    def __init__(self, generator: Any, tokenizer: Any, toolset: Toolset, max_turns: int = 4) -> None:
        if not hasattr(generator, "generate_ids"):
            raise TypeError(f"{type(generator).__name__} has no generate_ids(prompt_ids, sampling, "
                            "max_new_tokens); tools need a token-level generator")
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        self.generator, self.tokenizer = generator, tokenizer
        self.toolset, self.max_turns = toolset, max_turns

    def generate(self, prompts: list[str], n: int, sampling: SamplingParams) -> list[Rollout]:
        samples = [_Sample(i, ids) for i, ids in enumerate(encode_prompts(self.tokenizer, prompts))
                   for _ in range(n)]
        turn_sampling = replace(sampling, stop=tuple(dict.fromkeys((*sampling.stop, CALL_CLOSE))))
        for turn in range(self.max_turns):
            active = [s for s in samples if s.finish is None]
            if not _any_rank(bool(active)):
                break
            self._turn(active, turn_sampling, turn)
        return [self._rollout(s) for s in samples]

    def generate_stream(self, prompts: list[str], n: int,
                        sampling: SamplingParams) -> Iterator[list[Rollout]]:
        """`generate`'s groups, yielded once every turn of every sample is done: the turns of
        all samples are batched together, so no group finishes early."""
        return stream_by_prompt(self.generate(prompts, n, sampling), n)

    def sync_weights(self, model: Any) -> None:
        self.generator.sync_weights(model)

    def sleep(self) -> None:
        self.generator.sleep()

    def wake_up(self) -> None:
        self.generator.wake_up()

    def _turn(self, active: list[_Sample], sampling: SamplingParams, turn: int) -> None:
        budget = sampling.max_new_tokens
        if sampling.seed is not None:
            sampling = replace(sampling, seed=sampling.seed + turn * _TURN_SEED_STRIDE)
        outs = self.generator.generate_ids([s.prompt_ids + s.ids for s in active], sampling,
                                           [budget - len(s.ids) for s in active])
        callers: list[tuple[_Sample, list[dict[str, Any] | str]]] = []
        for sample, out in zip(active, outs):
            sample.extend(out.completion_ids, out.logprobs, action=1)
            sample.stats.turns += 1
            asks = out.finish_reason == "stop" and out.text.rstrip().endswith(CALL_CLOSE)
            if asks and turn < self.max_turns - 1:
                callers.append((sample, calls_of(out.text)))
            else:
                sample.finish = out.finish_reason
                sample.stats.hit_max_turns = asks
        results = self.toolset.run_calls([calls for _, calls in callers]) if callers else []
        for (sample, calls), answered in zip(callers, results):
            self._respond(sample, answered, budget)

    def _respond(self, sample: _Sample, results: list[ToolResult], budget: int) -> None:
        sample.stats.calls += len(results)
        sample.stats.errors += sum(r.error for r in results)
        text = tool_response_text(self.tokenizer, [r.text for r in results])
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(sample.ids) + len(ids) >= budget:  # no room left for the model to read it
            sample.finish = "length"
            return
        sample.extend(ids, [0.0] * len(ids), action=0)

    def _rollout(self, s: _Sample) -> Rollout:
        return Rollout(prompt_index=s.prompt_index, prompt_ids=s.prompt_ids, completion_ids=s.ids,
                       logprobs=s.logprobs, text=self.tokenizer.decode(s.ids, skip_special_tokens=True),
                       finish_reason=s.finish or "length", action_mask=s.mask, tool_stats=s.stats)


def _any_rank(local: bool) -> bool:
    """Whether any data-parallel rank still has active samples (just `local` when alone)."""
    import torch

    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return local
    flag = torch.tensor([float(local)], device="cuda" if torch.cuda.is_available() and
                        dist.get_backend() == "nccl" else "cpu")
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
