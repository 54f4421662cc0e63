"""Evaluation with the verifiers the rewards use: benchmark suites and held-out sets.

1. Generate: every problem gets k samples from a `Generator` (vLLM or HF, `make_generator`).
   Under torchrun (`qwqrl eval`) each rank samples its share of the problems (problem i goes to
   rank i % world) and the completions are all-gathered. Inside training every rank samples
   everything, as the learner's ZeRO-3 shards must run their forward passes together.
2. Judge: each sample goes to its task's verifier (`verify_batch`; the reward model for
   general prompts). A sample no verifier could judge (sandbox SE, a bad record) is left out of
   the metrics and counted as `unjudged`, never scored 0.
3. Measure: a suite's metrics come from its task (`qwqrl.eval_metrics`): math (and tool calls)
   avg@k and pass@k, code pass@1 averaged over k, IFEval's four accuracies, the mean RM score; each with the
   standard error over problems where one is defined.

`evaluate` is what the training pipeline calls between stages: the recipe's held-out `sets`
(`pass_rate/<task>` = share of samples fully correct, `rm_score/general`, `mean_length`,
`unjudged`, and with tools `tool_use/<task>` = share of samples that called one) plus its `suites` (`<suite>/<metric>` and `stderr/<suite>/<metric>`, and
`<overall>/overall` where all of an overall's suites ran, e.g. `bfcl-non-live/overall`).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from qwqrl.config import EvalConfig
from qwqrl.eval_metrics import ifeval_accuracies, mean_stderr, sample_metrics
from qwqrl.eval_suites import SuiteData, overall_metrics
from qwqrl.generation import Generator, SamplingParams, make_generator
from qwqrl.verifiers.base import Verdict
from qwqrl.verifiers.registry import TASK_VERIFIERS, verify_batch

Render = Callable[[dict[str, Any]], str]


@dataclass
class Completion:
    """One sample of one problem (`problem` indexes the suite's records)."""
    problem: int
    sample: int
    text: str
    tokens: int | None = None          # None: made elsewhere (--responses)
    finish_reason: str | None = None
    tool_calls: int | None = None      # None: no tools were offered


@dataclass
class Row:
    """One line of the results table: a metric of a benchmark."""
    metric: str
    value: float
    stderr: float | None
    k: int


@dataclass
class SuiteResult:
    data: SuiteData
    rows: list[Row]
    completions: list[Completion]
    verdicts: list[Verdict]
    judged: int
    unjudged: int
    extra: dict[str, Any] = field(default_factory=dict)  # mean_length, ...

    @property
    def name(self) -> str:
        return self.data.suite.name

    def metrics(self) -> dict[str, float]:
        """`<suite>/<metric>` and `stderr/<suite>/<metric>`, flat, as wandb and report.md get them."""
        out: dict[str, float] = {}
        for row in self.rows:
            out[f"{self.name}/{row.metric}"] = row.value
            if row.stderr is not None:
                out[f"stderr/{self.name}/{row.metric}"] = row.stderr
        return out


# ---------------------------------------------------------------------------------- generation


def generate_completions(generator: Any, records: Sequence[dict[str, Any]], render: Render,
                         samples: int, sampling: SamplingParams,
                         data_parallel: bool = True) -> list[Completion]:
    """k samples of every record, problem-major. `data_parallel`: each rank of a launch samples
    its share and all get everything (not for a ZeRO-3 sharded module, whose ranks must step
    together: there every rank samples every problem)."""
    import torch.distributed as dist

    initialized = data_parallel and dist.is_available() and dist.is_initialized()
    world = dist.get_world_size() if initialized else 1
    rank = dist.get_rank() if world > 1 else 0
    mine = list(range(rank, len(records), world))
    rollouts = generator.generate([render(records[i]) for i in mine], samples, sampling) if mine else []
    local = [Completion(mine[r.prompt_index], j % samples, r.text, len(r.completion_ids), r.finish_reason,
                        r.tool_stats.calls if r.tool_stats is not None else None)
             for j, r in enumerate(rollouts)]
    if world > 1:
        parts: list[Any] = [None] * world
        dist.all_gather_object(parts, local)
        local = [c for part in parts for c in part]
    return sorted(local, key=lambda c: (c.problem, c.sample))


# ------------------------------------------------------------------------------------- judging


def judge(task: str, records: Sequence[dict[str, Any]], completions: Sequence[Completion], *,
          think_opened: bool, sandbox_client: Any = None, reward_model: Any = None,
          math_timeout_s: float = 5.0) -> list[Verdict]:
    """One verdict per completion, by the verifier of `task`."""
    judged = [{**records[c.problem], "completion": c.text} for c in completions]
    if not judged:
        return []
    if task == "general":
        if reward_model is None:
            return [Verdict(None, {"verifier": "general"}, "no reward model given (--rm)")] * len(judged)
        return reward_model.verify_batch(judged)
    options: dict[str, Any] = {"think_opened": think_opened}
    if task == "math":
        options["timeout_s"] = math_timeout_s
    if task == "code":
        options["client"] = sandbox_client
    return verify_batch(TASK_VERIFIERS[task], judged, **options)


def correct(task: str, verdict: Verdict) -> bool | None:
    """The pass/fail verdict of a sample: math right, every test passed, every instruction
    followed (strict), the calls BFCL would accept; None where it could not be judged or the task has no pass/fail."""
    if verdict.score is None or task == "general":
        return None
    if task == "code":
        return verdict.detail.get("total", 0) > 0 and verdict.detail.get("passed") == verdict.detail["total"]
    return verdict.score >= 1.0


# ------------------------------------------------------------------------------------ metrics


def suite_result(data: SuiteData, completions: list[Completion], verdicts: list[Verdict]) -> SuiteResult:
    """The suite's metrics from its judged samples."""
    task = data.suite.task
    by_problem: dict[int, list[tuple[Completion, Verdict]]] = defaultdict(list)
    unjudged = 0
    for c, v in zip(completions, verdicts, strict=True):
        if v.score is None:
            unjudged += 1
        else:
            by_problem[c.problem].append((c, v))
    groups = [by_problem[p] for p in sorted(by_problem)]
    rows = _rows(task, groups, data.records) if groups else []
    lengths = [c.tokens for c in completions if c.tokens is not None]
    extra = {"mean_length": sum(lengths) / len(lengths)} if lengths else {}
    return SuiteResult(data, rows, completions, verdicts, len(completions) - unjudged, unjudged, extra)


def _rows(task: str, groups: list[list[tuple[Completion, Verdict]]],
          records: list[dict[str, Any]]) -> list[Row]:
    if task in ("math", "code", "tool_call"):
        judged = [[bool(correct(task, v)) for _, v in g] for g in groups]
        values = sample_metrics(judged)
        n = max(len(g) for g in groups)
        if task == "code":  # LiveCodeBench reports pass@1, estimated from all k samples
            value, stderr = values[f"avg@{n}"]
            return [Row("pass@1", value, stderr, n)]
        return [Row(name, value, stderr, n if name.startswith("avg@") else int(name[5:]))
                for name, (value, stderr) in values.items()]
    if task == "ifeval":
        flat = [v for g in groups for _, v in g]
        ids = [records[c.problem]["instruction_id_list"] for g in groups for c, _ in g]
        accuracies = ifeval_accuracies(ids, [v.detail["followed"] for v in flat],
                                       [v.detail["followed_loose"] for v in flat])
        n = max(len(g) for g in groups)
        rows = []
        for name in ("prompt_strict", "inst_strict", "prompt_loose", "inst_loose"):
            stderr = None
            if name.startswith("prompt_"):  # a prompt's share of samples that follow all
                key = "followed" if name.endswith("strict") else "followed_loose"
                _, stderr = mean_stderr([sum(all(v.detail[key]) for _, v in g) / len(g) for g in groups])
            rows.append(Row(name, accuracies[name], stderr, n))
        return rows
    if task == "general":
        value, stderr = mean_stderr([sum(v.score for _, v in g) / len(g) for g in groups])
        return [Row("rm_score", value, stderr, max(len(g) for g in groups))]
    raise ValueError(f"no metrics for task {task!r}")


# ----------------------------------------------------------------------------------- running


def suite_sampling(data: SuiteData, seed: int, max_new_tokens: int | None = None) -> SamplingParams:
    """The suite's sampling, seeded unless it sets its own seed, capped at `max_new_tokens`."""
    sampling = data.suite.sampling
    if sampling.seed is None:
        sampling = replace(sampling, seed=seed)
    if max_new_tokens is not None:
        sampling = replace(sampling, max_new_tokens=min(max_new_tokens, sampling.max_new_tokens))
    return sampling


def run_suite(data: SuiteData, generator: Any, render: Render, *, think_opened: bool,
              sandbox_client: Any = None, reward_model: Any = None, seed: int = 0,
              max_new_tokens: int | None = None, data_parallel: bool = True) -> SuiteResult:
    """Generate, judge and measure one suite on this process."""
    completions = generate_completions(generator, data.records, render, data.suite.samples,
                                       suite_sampling(data, seed, max_new_tokens), data_parallel)
    verdicts = judge(data.suite.task, data.records, completions, think_opened=think_opened,
                     sandbox_client=sandbox_client, reward_model=reward_model)
    return suite_result(data, completions, verdicts)


def evaluate(model: Any, tokenizer: Any, records: list[dict[str, Any]], cfg: EvalConfig,
             max_new_tokens: int, render: Render, sandbox_client: Any = None,
             reward_model: Any = None, think_opened: bool = True, batch_size: int = 64,
             seed: int = 0, suites: Sequence[SuiteData] = (),
             generator: Generator | None = None,
             tool_loop: Callable[[Generator], Generator] | None = None) -> dict[str, float]:
    """Held-out metrics of `model` inside training: HF generation on the learner's module, or
    the `generator` given (a vLLM engine that already holds the model's weights: the run's, when
    a stage rolls out with vLLM). `tool_loop` wraps the generator in a multi-turn tool loop
    (`qwqrl.tools.ToolRolloutGenerator`; `render` then shows the tools)."""
    if not records and not suites:
        return {}
    generator = generator or make_generator("hf", model, tokenizer, batch_size=batch_size)
    if tool_loop is not None:
        generator = tool_loop(generator)
    out: dict[str, float] = {}
    if records:
        out.update(_held_out(generator, records, cfg, max_new_tokens, render, seed=seed,
                             think_opened=think_opened, sandbox_client=sandbox_client,
                             reward_model=reward_model))
    for data in suites:
        result = run_suite(data, generator, render, think_opened=think_opened,
                           sandbox_client=sandbox_client, reward_model=reward_model, seed=seed,
                           max_new_tokens=cfg.max_new_tokens, data_parallel=False)
        out.update(result.metrics())
    out.update(overall_metrics(out))
    return out


def _held_out(generator: Any, records: list[dict[str, Any]], cfg: EvalConfig, max_new_tokens: int,
              render: Render, seed: int, **judging: Any) -> dict[str, float]:
    """`pass_rate/<task>`, `rm_score/general`, `mean_length`, `unjudged` of the recipe's sets."""
    sampling = (SamplingParams.make_greedy(max_new_tokens) if cfg.temperature == 0 else
                SamplingParams(max_new_tokens=max_new_tokens, temperature=cfg.temperature, seed=seed))
    completions = generate_completions(generator, records, render, cfg.samples, sampling,
                                       data_parallel=False)
    by_task: dict[str, list[Completion]] = defaultdict(list)
    for c in completions:
        by_task[records[c.problem]["task"]].append(c)
    out: dict[str, float] = {}
    unjudged = 0
    for task in sorted(by_task):
        if task == "general" and judging.get("reward_model") is None:
            unjudged += len(by_task[task])
            continue
        scores = [v.score for v in judge(task, records, by_task[task], **judging)]
        judged = [s for s in scores if s is not None]
        unjudged += len(scores) - len(judged)
        if not judged:
            continue
        if task == "general":
            out["rm_score/general"] = sum(judged) / len(judged)
        else:
            out[f"pass_rate/{task}"] = sum(s >= 1.0 for s in judged) / len(judged)
        calls = [c.tool_calls for c in by_task[task] if c.tool_calls is not None]
        if calls:
            out[f"tool_use/{task}"] = sum(n > 0 for n in calls) / len(calls)
    out["mean_length"] = sum(c.tokens or 0 for c in completions) / len(completions)
    out["unjudged"] = float(unjudged)
    return out
