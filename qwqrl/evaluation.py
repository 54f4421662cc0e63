"""Held-out evaluation with the same verifiers the rewards use.

Pass rate per task is the share of samples judged fully correct (math right, every code test
passed, every instruction followed); `rm_score/general` is the mean normalised RM score;
`mean_length` the mean completion length in tokens. Greedy by default; `samples > 1` with a
temperature gives avg@k. Samples that no verifier could judge are left out and counted.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qwqrl.config import EvalConfig
from qwqrl.generation import SamplingParams
from qwqrl.generation.hf import HFGenerator
from qwqrl.rewards import RewardRouter, Term
from qwqrl.verifiers.registry import BUILTIN, TASK_VERIFIERS, batch_verifier


def eval_terms(has_general: bool) -> list[Term]:
    """One accuracy verifier per task with its default options, weight 1, no shaping: scores
    are pass/fail judgements. The reward model itself is handed to the router as context."""
    names = [n for n in dict.fromkeys(TASK_VERIFIERS.values()) if has_general or n != "general"]
    return [Term(n, 1.0, batch_verifier(n), BUILTIN[n].options.model_construct().call_options(),
                 frozenset(BUILTIN[n].tasks or ())) for n in names]


def evaluate(model: Any, tokenizer: Any, records: list[dict[str, Any]], cfg: EvalConfig,
             max_new_tokens: int, render: Callable[[dict[str, Any]], str],
             sandbox_client: Any = None, reward_model: Any = None, think_opened: bool = True,
             batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    if not records:
        return {}
    generator = HFGenerator(model, tokenizer, batch_size=batch_size)
    sampling = (SamplingParams.make_greedy(max_new_tokens) if cfg.temperature == 0 else
                SamplingParams(max_new_tokens=max_new_tokens, temperature=cfg.temperature, seed=seed))
    prompts = [render(r) for r in records]
    rollouts = generator.generate(prompts, cfg.samples, sampling)
    scored_records = [{**records[r.prompt_index], "completion": r.text,
                       "completion_ids": r.completion_ids} for r in rollouts]
    router = RewardRouter(eval_terms(reward_model is not None), max_new_tokens,
                          sandbox_client=sandbox_client, reward_model=reward_model,
                          think_opened=think_opened)
    routable = [r for r in scored_records if r["task"] in router.tasks()]
    scored = router.score(routable)
    out: dict[str, float] = {}
    by_task: dict[str, list[float]] = {}
    for rec, reward in zip(routable, scored.rewards):
        if reward is not None:
            by_task.setdefault(rec["task"], []).append(reward)
    for task, scores in sorted(by_task.items()):
        if task == "general":
            out["rm_score/general"] = sum(scores) / len(scores)
        else:
            out[f"pass_rate/{task}"] = sum(s >= 1.0 for s in scores) / len(scores)
    out["mean_length"] = sum(len(r.completion_ids) for r in rollouts) / len(rollouts)
    out["unjudged"] = float(sum(r is None for r in scored.rewards) + len(scored_records) - len(routable))
    return out
