"""The recipe schema: one YAML file describes a whole run, validated before anything loads.

A recipe names the starting model and tokenizer, then an ordered list of stages: an optional
`sft` cold start, then `rl` stages (QwQ: stage one with math + code rewards, stage two with a
general reward model + rule-based verifiers). Every field carries a help text; `qwqrl recipe
check --explain` prints them. Unknown keys are errors, so a typo never silently runs defaults.
Loading, overrides and error messages live in `qwqrl.recipe`.
"""
from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator

from qwqrl.verifiers.registry import BUILTIN, TASK_VERIFIERS, CustomReward, Reward

TASKS = tuple(TASK_VERIFIERS)  # the tasks built-in verifiers judge


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------------------------------- model


class TinyModel(Strict):
    preset: Literal["tiny", "0.5b", "1.5b"] = Field(
        "tiny", description="Qwen2 shape from qwqrl.tiny.QWEN2_PRESETS, randomly initialised.")
    seed: int = Field(0, description="Initialisation seed.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Qwen2Config fields that replace the preset's.")


class RopeScaling(Strict):
    rope_type: Literal["yarn", "linear", "dynamic"] = Field(
        "yarn", description="YaRN is what Qwen recommends for inputs beyond 32k tokens.")
    factor: float = Field(4.0, gt=1.0, description="Context extension factor (4.0: 32k -> 128k).")
    original_max_position_embeddings: int = Field(32768, gt=0)


class Lora(Strict):
    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (scale = alpha / r).")
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or all linear layers.")


class ModelConfig(Strict):
    path: str | None = Field(
        None, description="Hub id or local directory of the starting (cold-start) checkpoint.")
    tiny: TinyModel | None = Field(
        None, description="Build a random Qwen2 locally instead of loading one (demo, tests).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="auto: bfloat16 on GPU, float32 on CPU.")
    attn_implementation: str | None = Field(None, description="e.g. flash_attention_2, sdpa.")
    rope_scaling: RopeScaling | None = Field(None, description="Long-context rope scaling (YaRN).")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    lora: Lora | None = Field(None, description="Train LoRA adapters instead of all weights.")

    @model_validator(mode="after")
    def _one_source(self) -> ModelConfig:
        if (self.path is None) == (self.tiny is None):
            raise ValueError("set exactly one of `path` (a checkpoint) or `tiny` (a local builder)")
        return self


class TokenizerConfig(Strict):
    path: str | None = Field(None, description="Defaults to the model's tokenizer.")
    chat_template: str = Field(
        "qwq", description="`qwq`: ChatML with the generation prompt opening `<think>\\n`; "
                           "`qwq-unlisted-tools`: the same without the tool list in the system "
                           "turn (tiny models that learn their tools from the cold start); "
                           "`model`: keep the tokenizer's own; anything else: a Jinja template.")
    system_prompt: str | None = Field(None, description="Prepended as a system turn if set.")
    task_instructions: bool = Field(
        True, description="Append QwQ's answer-format instruction to prompts (\\boxed{} for math, "
                          "the `answer` field for multiple choice, a fenced block for code).")


# ----------------------------------------------------------------------------------------- data


class DataSource(Strict):
    path: str | None = Field(None, description="Local .jsonl/.json/.parquet file of records.")
    hub: str | None = Field(None, description="A `datasets` id, loaded with `options` as kwargs.")
    synthetic: Literal["arithmetic", "word_problems", "code", "ifeval", "general", "products"] | None = Field(
        None, description="A built-in generator (qwqrl.data.synthetic), for demos and tests.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="load_dataset kwargs, or the generator's (n, seed).")
    task: Literal[TASKS] | None = Field(
        None, description="Sets each record's `task` (otherwise the records carry it).")
    weight: float = Field(1.0, gt=0.0, description="Share of the mixture, relative to siblings.")
    limit: int | None = Field(None, gt=0, description="Use at most this many records.")
    # Column mapping, applied to each row in this order: rename, converter, fixed, task.
    rename: dict[str, str] = Field(
        default_factory=dict,
        description="Source column -> record field, e.g. {problem: prompt, solution: answer}.")
    converter: str | None = Field(
        None, description="A named reshaping for layouts a rename cannot fix (the converters "
                          "of qwqrl.data.converters, e.g. openr1_math, deepcoder, ifeval).")
    fixed: dict[str, Any] = Field(
        default_factory=dict, description="Fields set to the same value on every record, "
                                          "e.g. {language: cpp}.")

    @model_validator(mode="after")
    def _one_origin(self) -> DataSource:
        given = [k for k in ("path", "hub", "synthetic") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"set exactly one of `path`, `hub`, `synthetic` (found {given or 'none'})")
        return self

    @field_validator("converter")
    @classmethod
    def _known_converter(cls, name: str | None) -> str | None:
        from qwqrl.data.converters import CONVERTERS

        if name is not None and name not in CONVERTERS:
            hint = difflib.get_close_matches(name, CONVERTERS, n=1)
            raise ValueError(f"unknown converter {name!r}; "
                             + (f"did you mean {hint[0]!r}?" if hint
                                else f"expected one of {', '.join(sorted(CONVERTERS))}"))
        return name

    @model_validator(mode="after")
    def _mapping(self) -> DataSource:
        targets = list(self.rename.values())
        twice = sorted({t for t in targets if targets.count(t) > 1})
        if twice:
            raise ValueError(f"rename: several columns renamed to {twice}")
        if any(not k or not v for k, v in self.rename.items()):
            raise ValueError("rename: column and field names must not be empty")
        if "task" in self.fixed:
            raise ValueError("fixed: set the task with the source's `task`, not in `fixed`")
        both = sorted(set(targets) & set(self.fixed))
        if both:
            raise ValueError(f"rename and fixed both set {both}; keep one")
        return self


class DataConfig(Strict):
    train: list[DataSource] = Field(min_length=1, description="The training mixture.")
    replay_previous: float = Field(
        0.2, ge=0.0, lt=1.0,
        description="RL stages after the first: share of prompts drawn from the previous RL "
                    "stage's mixture, so math and code do not regress during stage two.")


# -------------------------------------------------------------------------------------- rewards


class _Rewards(Strict):
    """`rewards`: built-in verifiers by name (their options from the registry) plus custom ones,
    `<name>: {fn, weight, tasks, options}`. Built-in fields are added from the registry below."""
    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, CustomReward] = Field(init=False)

    @model_validator(mode="after")
    def _has_reward(self) -> _Rewards:
        if not self.enabled():
            raise ValueError("an rl stage needs at least one reward")
        return self

    def enabled(self) -> dict[str, Reward]:
        """Enabled rewards by name: built-ins in registry order, then custom ones."""
        return {k: v for k, v in self if v is not None}


RewardsConfig = create_model(
    "RewardsConfig", __base__=_Rewards, __module__=__name__,
    **{name: (spec.options | None, Field(None, description=spec.help))
       for name, spec in BUILTIN.items()})


# ------------------------------------------------------------------------------------ algorithm


class KLConfig(Strict):
    beta: float = Field(0.0, ge=0.0, description="0 disables KL and loads no reference model.")
    estimator: Literal["k1", "k2", "k3"] = Field("k3", description="Schulman's KL estimators.")
    mode: Literal["loss", "reward"] = Field(
        "loss", description="A loss term (GRPO) or a per-token reward penalty (PPO).")


class DynamicSampling(Strict):
    enabled: bool = Field(False, description="DAPO: refill the batch after dropping groups.")
    max_rounds: int = Field(3, ge=1, description="Cap on extra generation rounds per step.")


class OffPolicyConfig(Strict):
    """Asynchronous rollouts and the correction for samples from another policy than the
    learner's (an older version, or vLLM's numerics): docs/scaling.md, "Asynchronous RL"."""
    max_staleness: int = Field(
        0, ge=0, description="Rollouts for steps t+1..t+k are generated, by weights at most k "
        "updates old, while the learner updates on step t (verl one-step-off = 1, AReaL, "
        "PipelineRL); samples older than k updates are dropped. 0: the synchronous loop.")
    correction: Literal["tis", "token_mask", "sequence_mask", "none"] = Field(
        "tis", description="How the loss corrects for behaviour log-probs that are not the "
        "learner's: tis = min(pi_old/pi_behaviour, tis_cap) per token (Yao et al. 2025); "
        "token_mask = the ratio, 0 outside [mask_low, mask_high] per token (IcePop); "
        "sequence_mask = the sequence's geometric-mean ratio, 0 outside the band (masked IS).")
    mask_low: float = Field(0.5, gt=0.0, description="Lowest ratio the mask corrections keep "
                                                     "(IcePop: 0.5).")
    mask_high: float = Field(2.0, gt=0.0, description="Highest ratio the mask corrections keep "
                                                      "(IcePop: 2.0).")

    @model_validator(mode="after")
    def _band(self) -> OffPolicyConfig:
        if self.mask_low >= self.mask_high:
            raise ValueError(f"mask_low ({self.mask_low}) must be below mask_high ({self.mask_high})")
        return self


class AlgorithmConfig(Strict):
    name: Literal["grpo", "dr_grpo", "rloo", "ppo"] = Field(
        "grpo", description="grpo (DeepSeekMath); dr_grpo: no std scaling, pair it with "
                            "loss_agg seq-mean-token-sum-norm; rloo; ppo: a critic and GAE.")
    num_generations: int = Field(8, ge=1, description="Samples per prompt (the group size G).")
    scale_rewards: Literal["group", "batch", "none"] = Field(
        "group", description="GRPO advantage scaling; `none` is Dr.GRPO.")
    epsilon_low: float = Field(0.2, gt=0.0, description="Lower clip range of the ratio.")
    epsilon_high: float = Field(0.28, gt=0.0, description="DAPO clip-higher upper range.")
    dual_clip: float | None = Field(None, gt=1.0, description="Dual-clip bound for A < 0.")
    loss_agg: Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"] = Field(
        "token-mean", description="How token losses become one number.")
    kl: KLConfig = Field(default_factory=KLConfig)
    filter_zero_std: bool = Field(True, description="Drop groups whose rewards are all equal.")
    dynamic_sampling: DynamicSampling = Field(default_factory=DynamicSampling)
    mask_truncated: bool = Field(False, description="Overlong filtering: no loss on truncated.")
    epochs: int = Field(1, ge=1, description="Update epochs per batch (importance ratios).")
    tis_cap: float | None = Field(
        2.0, gt=0.0, description="Truncated importance sampling cap for generator/learner mismatch.")
    off_policy: OffPolicyConfig = Field(
        default_factory=OffPolicyConfig,
        description="Asynchronous rollouts (max_staleness) and the off-policy correction.")
    gamma: float = Field(1.0, ge=0.0, le=1.0, description="PPO discount.")
    lam: float = Field(1.0, ge=0.0, le=1.0, description="PPO GAE lambda.")
    value_clip: float = Field(0.2, gt=0.0, description="PPO value clipping range.")
    critic_lr: float = Field(1e-5, gt=0.0, description="PPO critic learning rate.")

    @model_validator(mode="after")
    def _group_size(self) -> AlgorithmConfig:
        if self.name in ("grpo", "dr_grpo", "rloo") and self.num_generations < 2:
            raise ValueError(f"{self.name} compares samples within a group: num_generations >= 2")
        if self.kl.beta > 0 and self.kl.mode == "reward" and self.name != "ppo":
            raise ValueError("kl.mode `reward` (a per-token penalty) needs ppo's token-level "
                             "advantages; use kl.mode `loss` with outcome methods")
        return self


# ----------------------------------------------------------------------------------- generation


class VLLMConfig(Strict):
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.3, gt=0.0, le=1.0)
    enable_sleep_mode: bool = Field(True, description="Free vLLM memory during updates.")
    max_model_len: int | None = Field(None, gt=0)


class RemoteConfig(Strict):
    """Rollout workers apart from the learner (`generation.placement: remote`), each one engine
    of `generation.backend` in its own process; docs/scaling.md, "Layouts"."""
    workers: int = Field(1, ge=1, description="Rollout worker processes (per learner rank); "
                                              "each gets a contiguous share of the prompts.")
    launch: Literal["spawn", "external"] = Field(
        "spawn", description="spawn: the trainer starts the workers as child processes, pinned to "
        "`cpus` / `gpus`. external: a launcher starts them (torchrun, a slurm heterogeneous job: "
        "`python -m qwqrl.generation.remote_worker --learner HOST:PORT`, $QWQRL_REMOTE_AUTHKEY set "
        "on both sides) and the trainer waits for them on `host:port`.")
    cpus: list[list[int]] | None = Field(
        None, description="spawn: the CPUs each worker may use, one list per worker, e.g. [[1]]; "
        "its torch thread count follows. Default: the trainer's.")
    gpus: list[list[int]] | None = Field(
        None, description="spawn: the GPUs each worker sees (CUDA_VISIBLE_DEVICES), one list per "
        "worker, e.g. [[4], [5], [6], [7]]. Keep them apart from the learner's GPUs.")
    host: str = Field("127.0.0.1", description="Address the trainer listens on for its workers and "
                      "hosts the weight-broadcast rendezvous at; a reachable address of the "
                      "trainer's node when workers run on other nodes.")
    port: int = Field(0, ge=0, le=65535, description="Control port; 0 picks a free one (spawn "
                      "only: external workers must be told it).")
    timeout_s: float = Field(300.0, gt=0, description="How long the trainer waits for workers to "
                             "start, and a weight broadcast for its peers.")

    @model_validator(mode="after")
    def _one_per_worker(self) -> RemoteConfig:
        for key in ("cpus", "gpus"):
            value = getattr(self, key)
            if value is not None and len(value) != self.workers:
                raise ValueError(f"{key} has {len(value)} lists for {self.workers} workers; give "
                                 f"one list per worker")
        if self.launch == "external" and self.port == 0:
            raise ValueError("launch external needs a fixed port: the workers dial host:port")
        return self


class GenerationConfig(Strict):
    backend: Literal["hf", "vllm"] = Field("hf", description="Rollout engine.")
    placement: Literal["colocated", "remote"] = Field(
        "colocated", description="colocated: the engine runs in the trainer's processes, on its "
        "devices, taking turns with the update. remote: rollout workers in processes of their own "
        "(`remote`), fed new weights by a broadcast after each update, so generation can overlap "
        "the update (algorithm.off_policy.max_staleness >= 1).")
    remote: RemoteConfig = Field(default_factory=RemoteConfig,
                                 description="The rollout workers of placement `remote`.")

    @model_validator(mode="after")
    def _remote_engine(self) -> GenerationConfig:
        if self.placement == "remote" and self.backend == "vllm" and self.vllm.tensor_parallel_size > 1:
            raise ValueError("placement remote runs one vLLM engine per worker on one GPU: "
                             "vllm.tensor_parallel_size must be 1 (add remote.workers instead)")
        return self
    temperature: float = Field(0.6, ge=0.0, description="QwQ guide: 0.6.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="QwQ guide: 0.95.")
    top_k: int = Field(20, ge=0, description="QwQ guide: 20-40; 0 disables.")
    max_new_tokens: int = Field(1024, gt=0)
    max_prompt_tokens: int | None = Field(
        None, gt=0, description="Prompts longer than this (rendered, in tokens) are dropped when "
                                "the stage starts; the count is logged as data/dropped_long_prompts.")
    batch_size: int = Field(64, gt=0, description="HF backend: sequences per generate call.")
    vllm: VLLMConfig = Field(default_factory=VLLMConfig)


# -------------------------------------------------------------------------------------- trainer


class TrainerConfig(Strict):
    lr: float = Field(1e-6, gt=0.0, description="Peak learning rate.")
    warmup_steps: int = Field(0, ge=0)
    schedule: Literal["constant", "cosine", "linear"] = Field("constant", description="After warmup.")
    max_steps: int = Field(100, ge=1, description="Optimizer steps in this stage.")
    batch_size: int = Field(
        8, ge=1, description="Per optimizer step over all data-parallel ranks (each takes an "
                             "equal share, so the world size must divide it). SFT: sequences; "
                             "RL: prompts, each sampled num_generations times.")
    micro_batch_size: int = Field(8, ge=1, description="Sequences per forward/backward.")
    micro_batch_tokens: int | None = Field(
        None, gt=0, description="Fill micro-batches to this many real tokens (prompt + completion; "
        "they are packed without padding) instead of a fixed count.")
    logprob_chunk_size: int = Field(
        512, ge=1, description="Tokens per LM-head chunk when computing log-probs and entropy: "
        "the (tokens, vocab) logits are never held whole (verl/NeMo-RL chunking). Peak memory "
        "grows ~3 MB per chunk token at a 152k vocabulary (CPU, benchmarks/update_memory.py: "
        "128 -> 0.8 GB, 512 -> 2.0 GB, 1024 -> 3.4 GB at T = 2,048) and speed did not change "
        "beyond the noise of a shared CPU; 512 keeps the GPU matmuls large.")
    grad_clip: float = Field(1.0, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    zero_stage: Literal[0, 1, 2, 3] = Field(0, description="DeepSpeed ZeRO stage.")
    offload: bool = Field(False, description="ZeRO-3 optimizer/params offload to CPU.")
    deepspeed: dict[str, Any] = Field(
        default_factory=dict, description="Extra DeepSpeed config merged over the generated one.")


class CheckpointConfig(Strict):
    every: int = Field(0, ge=0, description="Save every N steps; 0 saves only at the stage end.")
    keep: int = Field(2, ge=1, description="Keep the last K step checkpoints.")


class StopAt(Strict):
    metric: str = Field(description="An eval metric, e.g. `pass_rate/math`.")
    threshold: float = Field(description="Stop the stage once the metric reaches this.")
    every: int = Field(25, gt=0, description="Evaluate the held-out metric every N steps.")


class StageBase(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Folder name under checkpoints/.")
    init_from: str = Field(
        "previous", description="`previous`: the last stage's final weights; or a checkpoint path.")
    data: DataConfig
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    checkpoint: CheckpointConfig = Field(default_factory=CheckpointConfig)


class SFTStage(StageBase):
    kind: Literal["sft"]
    max_length: int = Field(1024, gt=0, description="Prompt + completion tokens; longer are cut.")
    group_by_length: bool = Field(
        False, description="Batch sequences of similar length (batches in random order): much "
                           "less padding on mixed data, but length-homogeneous batches stopped a "
                           "~1M-parameter model from learning arithmetic (0.5% vs 53% held out "
                           "after 300 steps), so it is opt-in.")
    stop_at: StopAt | None = Field(None, description="Early stop on a held-out metric.")


class ToolsConfig(Strict):
    """Tools the policy may call while it generates (docs/tools.md)."""
    python: bool = Field(
        False, description="The built-in `python` tool: runs the model's program in the stage's "
                           "sandbox (`rewards.code.urls`, $QWQRL_SANDBOX_URL, else a local one) and "
                           "returns stdout, stderr and the exit status.")
    functions: list[str] = Field(
        default_factory=list,
        description="User tools by import path, `package.module:function`; the JSON schema the "
                    "model sees comes from the signature (types) and the docstring (`Args:`).")
    max_turns: int = Field(
        4, ge=1, description="Assistant turns per sample, tool calls in between; a sample whose "
                             "last allowed turn still calls a tool ends there, unanswered.")
    timeout_s: float = Field(10.0, gt=0.0, description="Per tool call; a call that overruns "
                                                       "returns an error text to the model.")
    max_response_chars: int = Field(
        4000, gt=0, description="Longer tool results are cut; their tokens count against "
                                "generation.max_new_tokens, which covers the whole completion.")

    @field_validator("functions")
    @classmethod
    def _importable(cls, paths: list[str]) -> list[str]:
        from qwqrl.tools import function_tool, import_function

        for i, path in enumerate(paths):
            try:
                function_tool(import_function(path))
            except ValueError as e:
                raise ValueError(f"functions[{i}]: {e}") from None
        return paths

    @model_validator(mode="after")
    def _some_tool(self) -> ToolsConfig:
        if not self.python and not self.functions:
            raise ValueError("`tools` gives no tool: set `python: true` or list `functions`")
        return self


class RLStage(StageBase):
    kind: Literal["rl"]
    rewards: RewardsConfig
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    tools: ToolsConfig | None = Field(
        None, description="Tools during rollouts: generation stops at `</tool_call>`, the calls "
                          "run, their results are appended as a tool turn, generation goes on. "
                          "Tool-response tokens are context, never trained on.")

    @model_validator(mode="after")
    def _tools_with_ppo(self) -> RLStage:
        a = self.algorithm
        if self.tools is not None and a.name == "ppo" and (a.gamma < 1 or a.lam < 1):
            raise ValueError("tools with ppo need gamma = lam = 1: GAE would bootstrap through the "
                             "values of tool-response tokens, which the critic is never trained on")
        return self


Stage = Annotated[Union[SFTStage, RLStage], Field(discriminator="kind")]


# ------------------------------------------------------------------------------------- the run


class EvalConfig(Strict):
    sets: list[DataSource] = Field(
        default_factory=list, description="Held-out sets, evaluated before and after every stage.")
    suites: list[str] = Field(
        default_factory=list,
        description="Benchmark suites (qwqrl.eval_suites: aime24, livecodebench, ifeval, tiny-math, "
                    "...) with their own data, sampling and metrics, evaluated with the sets.")
    suite_data: dict[str, str] = Field(
        default_factory=dict,
        description="Suite name -> local file in its source's schema, for suites without a "
                    "default source (BFCL's: its own files, answers in possible_answer/ beside).")
    tools: ToolsConfig | None = Field(
        None, description="Tools the model may call while it answers the sets and suites (as "
                          "an RL stage's `tools`), the same at every evaluation so rows compare; "
                          "adds `tool_use/<task>`, the share of samples that called one.")
    samples: int = Field(1, ge=1, description="Samples per prompt of the sets (avg@k).")
    temperature: float = Field(0.0, ge=0.0, description="Sets: 0 is greedy.")
    max_new_tokens: int | None = Field(
        None, gt=0, description="Sets: default the stage's. Also caps the suites' (32,768).")

    @model_validator(mode="after")
    def _known_suites(self) -> EvalConfig:
        from qwqrl.errors import UserError
        from qwqrl.eval_suites import get_suites

        try:
            suites = get_suites(self.suites, where="eval.suites")
        except UserError as e:  # names the did-you-mean; pydantic reports ValueErrors
            raise ValueError(str(e)) from None
        named = {s.name for s in suites}
        stray = sorted(set(self.suite_data) - named)
        if stray:
            raise ValueError(f"eval.suite_data names {stray}, which eval.suites does not run")
        lacking = [s.name for s in suites if s.source is None and s.name not in self.suite_data]
        if lacking:
            raise ValueError(f"eval.suites {lacking} have no default data: give each a file "
                             f"in eval.suite_data ({{suite: path}})")
        return self


class WandbConfig(Strict):
    project: str = Field("qwqrl")
    entity: str | None = None
    mode: Literal["online", "offline", "disabled"] = Field(
        "offline", description="offline needs no account; `wandb sync` uploads later.")


class LoggingConfig(Strict):
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    log_every: int = Field(1, ge=1)
    samples_every: int = Field(10, ge=1, description="Write sample completions every N steps.")


class Recipe(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="Run name; runs/<name>/.")
    seed: int = Field(0)
    output_dir: str | None = Field(None, description="Default: runs/<name>.")
    model: ModelConfig
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig)
    stages: list[Stage] = Field(min_length=1)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _unique_stage_names(self) -> Recipe:
        names = [s.name for s in self.stages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"stage names must be unique; repeated: {dupes}")
        return self
