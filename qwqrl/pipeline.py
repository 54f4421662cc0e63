"""The run: a recipe's stages in order, with evaluations around each and a report at the end.

    initial eval -> [sft cold start] -> eval -> rl stage one -> eval -> rl stage two -> eval

Stage N+1 starts from stage N's final weights (saved as an HF checkpoint under
`checkpoints/<stage>/final`), or from its own `init_from`. `progress.json` records finished
stages and the latest step checkpoint, so `--resume` skips what is done and continues a stage at
its last checkpoint with the same data order and RNG. Services the rewards need (a sandbox for
code, a reward model) are started here and stopped at the end.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import torch

from qwqrl.chat_template import opens_think
from qwqrl.checkpoint import Progress, write_json_atomic
from qwqrl.config import Recipe, RLStage, SFTStage
from qwqrl.critic import Critic
from qwqrl.data.mixture import MixtureSampler, mix_with_replay
from qwqrl.data.prompts import drop_long_prompts, render_prompt
from qwqrl.data.records import load_source
from qwqrl.distributed import Dist, barrier, init_distributed
from qwqrl.errors import UserError
from qwqrl.eval_suites import get_suites, load_suite
from qwqrl.evaluation import evaluate
from qwqrl.learner import Learner
from qwqrl.models import (critic_model, load_policy, load_tokenizer, reference_model,
                          save_pretrained_atomic)
from qwqrl.policy_update import UpdateSettings
from qwqrl.recipe import dump_recipe
from qwqrl.rewards import RewardRouter, record_tasks
from qwqrl.rl_trainer import Models, RLTrainer, RunContext
from qwqrl.rollouts import RolloutCollector, sampling_params
from qwqrl.tracking import Tracker, read_metrics

Sources = list[tuple[list[dict[str, Any]], float]]


def check_batch_sizes(recipe: Recipe, world_size: int, only: list[int] | None = None) -> None:
    """`trainer.batch_size` is global (prompts per step for RL, sequences for SFT) and each
    data-parallel rank takes an equal share, so it must divide by the launch's world size;
    checked before any model loads, so a mismatched launch fails in seconds."""
    for i, stage in enumerate(recipe.stages):
        size = stage.trainer.batch_size
        if (only is None or i in only) and size % world_size:
            raise UserError(f"stages[{i}] ({stage.name}).trainer.batch_size={size} does not divide "
                            f"by the data-parallel world size {world_size} (each rank takes an "
                            f"equal share): use a multiple of {world_size}, or launch "
                            f"a world size that divides {size}")


class Pipeline:
    def __init__(self, recipe: Recipe, recipe_dir: Path, resume: bool = False,
                 only_stages: list[int] | None = None) -> None:
        self.recipe = recipe
        self.base = recipe_dir
        self.resume = resume
        self.only = only_stages
        self.run_dir = Path(recipe.output_dir or Path("runs") / recipe.name)
        self.dist: Dist = init_distributed()
        check_batch_sizes(recipe, self.dist.world_size, only_stages)
        torch.manual_seed(recipe.seed)
        if self.run_dir.exists() and not resume and (self.run_dir / "progress.json").exists() \
                and only_stages is None:
            raise UserError(f"{self.run_dir} already holds a run: pass --resume to continue it, "
                            f"or set output_dir / name to start a new one")
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            dump_recipe(recipe, self.run_dir / "recipe.yaml")
        barrier()
        self.progress = Progress(self.run_dir)
        self.tokenizer = load_tokenizer(recipe.tokenizer, recipe.model)
        self.render = partial(render_prompt, self.tokenizer, system_prompt=recipe.tokenizer.system_prompt,
                              instructions=recipe.tokenizer.task_instructions)
        self.think_opened = opens_think(self.tokenizer)
        self.tasks = record_tasks(s.rewards for s in recipe.stages if isinstance(s, RLStage))
        self.eval_records = [r for src in recipe.eval.sets
                             for r in load_source(src, self.base, self.tasks)]
        self.eval_suites = [load_suite(s, self.base, data=recipe.eval.suite_data.get(s.name))
                            for s in get_suites(recipe.eval.suites)]
        self.evals_path = self.run_dir / "evals.json"
        self.evals: list[dict[str, Any]] = (json.loads(self.evals_path.read_text())
                                            if resume and self.evals_path.exists() else [])
        self._vllm: Any = None  # the run's colocated vLLM engine, built on first use
        self._vllm_opts: dict[str, Any] = {}
        self._remote: Any = None  # the current RL stage's rollout workers (placement remote)

    # ------------------------------------------------------------------------------ services

    @contextlib.contextmanager
    def services(self) -> Iterator[None]:
        """Sandboxes and reward models, each started when first needed and stopped at the end.

        Every RL stage is judged with its own `rewards.code.urls` and `rewards.general` (two
        stages naming the same ones share them). Held-out sets are judged alike after every
        stage, so the table compares like with like: with the first sandbox URLs and the first
        reward model among the stages this launch runs (a local sandbox / no RM when none).
        """
        with contextlib.ExitStack() as stack:
            self._stack = stack
            self._started: dict[str, Any] = {}
            yield

    def stage_services(self, stage: Any) -> dict[str, Any]:
        """The sandbox client and reward model that judge `stage`'s rollouts (None: unused)."""
        rewards = stage.rewards if isinstance(stage, RLStage) else None
        return {"sandbox": self._sandbox(rewards.code.urls) if rewards and rewards.code else None,
                "reward_model": self._reward_model(rewards.general)
                if rewards and rewards.general else None}

    def eval_services(self) -> dict[str, Any]:
        """The sandbox and reward model that judge held-out answers, the same for every row."""
        rl = [s.rewards for i, s in enumerate(self.recipe.stages)
              if isinstance(s, RLStage) and (self.only is None or i in self.only)]
        urls = next((r.code.urls for r in rl if r.code and r.code.urls), [])
        general = next((r.general for r in rl if r.general), None)
        needs_code = any(r["task"] == "code" for r in self.eval_records) \
            or any(s.suite.task == "code" for s in self.eval_suites)
        return {"sandbox": self._sandbox(urls) if needs_code else None,
                "reward_model": self._reward_model(general) if general else None}

    def _sandbox(self, urls: list[str]) -> Any:
        """A client for `urls`; empty: $QWQRL_SANDBOX_URL, else one local server per process."""
        from qwqrl.sandbox.client import env_urls
        from qwqrl.sandbox.local import open_sandbox

        key = "sandbox:" + ",".join(urls or env_urls())
        if key not in self._started:
            self._started[key] = open_sandbox(self._stack, urls)
        return self._started[key]

    def _reward_model(self, cfg: Any) -> Any:
        key = "rm:" + cfg.model_dump_json(exclude={"weight"})
        if key not in self._started:
            self._started[key] = self._load_reward_model(cfg)
        return self._started[key]

    def _load_reward_model(self, cfg: Any) -> Any:
        from qwqrl.verifiers.reward_model import RemoteRewardModel, RewardModelScorer

        if cfg.url:
            return RemoteRewardModel(cfg.url, normalize=cfg.normalize)
        path = self._resolve(cfg.path)
        try:
            return RewardModelScorer(path, device=cfg.device or str(self.dist.device),
                                     batch_size=cfg.batch_size, normalize=cfg.normalize,
                                     think_opened=self.think_opened)
        except OSError as e:
            raise UserError(f"rewards.general.path: cannot load the reward model {cfg.path!r} "
                            f"(tried {Path.cwd()}, {self.base}, {self.run_dir}, then as a hub "
                            f"id): {e}") from None

    def _resolve(self, path: str) -> str:
        """Paths in a recipe are tried against the working directory, then the recipe's folder
        and the run directory (the demo builds its reward model there)."""
        for candidate in (Path(path), self.base / path, self.run_dir / path):
            if candidate.exists():
                return str(candidate)
        return path  # a hub id

    # ---------------------------------------------------------------------------------- run

    def run(self) -> list[dict[str, Any]]:
        if self.resume:
            self._truncate_metrics(self._resume_point())
        with self.services():
            tracker = Tracker(self.run_dir, self.recipe.logging, self.recipe.model_dump(mode="json"),
                              is_main=self.dist.is_main)
            self.tracker = tracker
            try:
                self._run_stages()
            finally:
                tracker.finish()
        if self.dist.is_main:
            from qwqrl.report import write_report
            write_report(self.run_dir, self.evals, title=f"qwqrl run {self.recipe.name}")
        return self.evals

    def _run_stages(self) -> None:
        # The weights the next stage starts from: None is the recipe's model; `missing` means
        # the previous stage was skipped without finishing, so "previous" has nothing to give.
        missing = object()
        weights: Any = None
        global_step = 0
        previous_rl: Sources | None = None
        for i, stage in enumerate(self.recipe.stages):
            sources = [(load_source(src, self.base, self.tasks), src.weight)
                       for src in stage.data.train]
            done = self.progress.stage_done(stage.name)
            if done or (self.only is not None and i not in self.only):
                weights = done or missing
                if done:
                    global_step = self.progress.data["completed"][stage.name]["global_step"]
                if isinstance(stage, RLStage):
                    previous_rl = sources
                continue
            if stage.init_from != "previous":
                weights = self._resolve(stage.init_from)
            elif weights is missing:
                raise UserError(f"stages[{i}] ({stage.name}) starts from the previous stage's "
                                f"final weights, which {self.run_dir} does not have: run that "
                                f"stage first or set stages.{i}.init_from to a checkpoint")
            model = load_policy(self.recipe.model, self.tokenizer, self.dist.device, path=weights,
                                seed=self.recipe.seed, trainer=stage.trainer)
            if isinstance(stage, SFTStage):
                global_step, final_model = self._sft(i, stage, model, sources, global_step)
            else:
                mixture = mix_with_replay(sources, previous_rl, stage.data.replay_previous) \
                    if previous_rl else sources
                mixture = self._drop_long_prompts(i, stage, mixture, global_step)
                self.svc = self.stage_services(stage)
                global_step, final_model = self._rl(i, stage, model, mixture, global_step)
                previous_rl = sources
            weights = str(self._save_final(stage, final_model, global_step))
            self._evaluate(final_model, stage.name, stage)
            del model, final_model

    def _drop_long_prompts(self, index: int, stage: RLStage, sources: Sources,
                           global_step: int) -> Sources:
        """Apply `generation.max_prompt_tokens` at stage start; the count is printed and logged."""
        limit = stage.generation.max_prompt_tokens
        if limit is None:
            return sources
        kept, dropped = drop_long_prompts(sources, self.tokenizer, self.render, limit,
                                          where=f"stages[{index}] ({stage.name})")
        if self.dist.is_main:
            print(f"{stage.name}: dropped {dropped} prompts longer than {limit} tokens")
        self.tracker.log({"data/dropped_long_prompts": float(dropped), "stage": float(index)},
                         step=global_step)
        return kept

    def _sft(self, index: int, stage: SFTStage, model: Any, sources: Sources,
             global_step: int) -> tuple[int, Learner]:
        from qwqrl.progress import stage_progress
        from qwqrl.sft import SFT_BETAS, SFTTrainer, tokenize

        t = stage.trainer
        sampler = MixtureSampler(sources, seed=self.recipe.seed + index)
        rows = tokenize(sampler.sample(t.max_steps * t.batch_size), self.tokenizer, self.render,
                        stage.max_length)  # the mixture, in order, as one epoch
        learner = Learner(model, t, total_steps=t.max_steps, betas=SFT_BETAS)
        self._evaluate_initial(learner, stage)
        evaluate_fn = partial(self._eval_metrics, stage=stage,
                              metric=stage.stop_at.metric if stage.stop_at else None)
        trainer = SFTTrainer(stage, index, learner, self.tokenizer, rows, self.dist, self.recipe.seed,
                             self.run_dir, self.progress, evaluate=evaluate_fn,
                             log=lambda m, s: self.tracker.log({**m, "stage": float(index)}, step=s),
                             global_step=global_step, log_every=self.recipe.logging.log_every)
        latest = self.progress.latest(stage.name) if self.resume else None
        if latest is not None:
            trainer.resume(latest)
        with stage_progress(stage.name, t.max_steps, trainer.step, enabled=self.dist.is_main) as bar:
            trainer.train(progress_bar=bar)
        return trainer.global_step, learner

    def _vllm_generator(self, stage: RLStage, model: Any) -> Any:
        """The run's vLLM engine, holding `model`'s weights. One engine serves every stage and
        evaluation (a second one would need memory of its own); a stage that asks for other
        engine settings replaces it."""
        from qwqrl.generation import make_generator

        opts = stage.generation.vllm.model_dump()
        if self._vllm is not None and opts == self._vllm_opts:
            self._vllm.sync_weights(model)
            return self._vllm
        self._vllm = None  # released before the next one is built
        gc.collect()
        self._vllm = make_generator("vllm", model, self.tokenizer, seed=self.recipe.seed, **opts)
        self._vllm_opts = opts
        return self._vllm

    def _rl(self, index: int, stage: RLStage, model: Any, sources: Sources,
            global_step: int) -> tuple[int, Any]:
        from qwqrl.progress import stage_progress

        reference = reference_model(model, stage.trainer) if stage.algorithm.kl.beta > 0 else None  # before ZeRO
        policy = Learner(model, stage.trainer, total_steps=stage.trainer.max_steps)
        self._evaluate_initial(policy, stage)
        models = Models(policy, reference)
        if stage.algorithm.name == "ppo":
            critic = critic_model(policy.module, stage.trainer, self.dist.device,
                                  seed=self.recipe.seed + index)
            models.critic = Critic(Learner(critic, stage.trainer,
                                           total_steps=stage.trainer.max_steps,
                                           lr=stage.algorithm.critic_lr), stage.algorithm)
        router = RewardRouter.from_config(stage.rewards, stage.generation.max_new_tokens,
                                          sandbox_client=self.svc["sandbox"],
                                          reward_model=self.svc["reward_model"],
                                          think_opened=self.think_opened)
        for records, _ in sources:
            router.check_tasks(records, where=f"stages[{index}] ({stage.name})")
        generator, render = self._generator(stage, policy), self.render
        if stage.tools is not None:  # multi-turn rollouts; the prompt shows the tools
            generator, render = self._with_tools(stage, generator)
        collector = RolloutCollector(MixtureSampler(sources, seed=self.recipe.seed + index),
                                     generator, router, render,
                                     sampling_params(stage.generation), stage.algorithm, self.dist)
        settings = UpdateSettings.for_stage(stage, self.tokenizer.pad_token_id, self.dist.device)
        run = RunContext(self.run_dir, self.progress, self.tracker, self.dist)
        trainer = RLTrainer(stage, index, models, collector, settings, run, global_step)
        latest = self.progress.latest(stage.name) if self.resume else None
        if latest is not None:
            trainer.resume(latest)
        with stage_progress(stage.name, stage.trainer.max_steps, trainer.step,
                            enabled=self.dist.is_main) as bar:
            trainer.train(progress_bar=bar)
        return trainer.global_step, policy

    def _generator(self, stage: RLStage, policy: Learner) -> Any:
        from qwqrl.generation import make_generator

        if stage.generation.placement == "remote":
            return self._remote_generator(stage, policy.module)
        if stage.generation.backend == "vllm":
            return self._vllm_generator(stage, policy.module)
        # asynchronous rollouts sample while the learner updates: not from the learner's module
        kind = "hf_copy" if stage.algorithm.off_policy.max_staleness else "hf"
        return make_generator(kind, policy.module, self.tokenizer, batch_size=stage.generation.batch_size)

    def _with_tools(self, stage: RLStage, generator: Any) -> tuple[Any, Any]:
        """The stage's generator wrapped in the tool loop, and a renderer listing the tools. The
        python tool runs in the stage's code sandbox (`rewards.code.urls`, else the default)."""
        urls = stage.rewards.code.urls if stage.rewards.code else []
        wrap, render = self._tool_loop(stage.tools, urls)
        return wrap(generator), render

    def _tool_loop(self, cfg: Any, urls: list[str]) -> tuple[Any, Any]:
        """(a function wrapping a generator in the tool loop of `cfg`, a `ToolsConfig`; the
        renderer that lists its tools); the python tool runs on the sandbox at `urls`."""
        from qwqrl.tools import ToolRolloutGenerator, Toolset

        toolset = Toolset.from_config(cfg, sandbox=self._sandbox(urls) if cfg.python else None)
        return (partial(ToolRolloutGenerator, tokenizer=self.tokenizer, toolset=toolset,
                        max_turns=cfg.max_turns), partial(self.render, tools=toolset.schemas))

    def _remote_generator(self, stage: RLStage, model: Any) -> Any:
        """Rollout workers for `stage` (qwqrl.generation.remote); the previous stage's stop
        first, and the last ones when the run's services end."""
        from qwqrl.generation.remote import RemoteGenerator, settings_for

        if self._remote is not None:
            self._remote.close()
        self._remote = RemoteGenerator(model, self.tokenizer, settings_for(stage.generation, self.recipe.seed))
        self._stack.callback(self._remote.close)
        return self._remote

    def _save_final(self, stage: Any, trained: Any, global_step: int) -> Path:
        out = self.run_dir / "checkpoints" / stage.name / "final"
        if isinstance(trained, Learner):
            state = trained.state_dict_for_save()
            module = trained.module
        else:
            state, module = None, trained
        if self.dist.is_main:
            out.parent.mkdir(parents=True, exist_ok=True)
            save_pretrained_atomic(module, self.tokenizer, out, state_dict=state)
            self.progress.mark_done(stage.name, out, global_step)
        barrier()
        return out

    # ----------------------------------------------------------------------------- evaluation

    def _eval_metrics(self, model: Any, stage: Any, metric: str | None = None) -> dict[str, float]:
        """Evaluate on the held-out sets; with `metric` (e.g. `pass_rate/math`), only its task's."""
        suites = [s for s in self.eval_suites if metric is None or metric.startswith(s.suite.name + "/")]
        records = self.eval_records
        if metric is not None:
            task = metric.split("/")[-1]
            records = [] if suites else [r for r in records if r["task"] == task] or records
        max_new = self.recipe.eval.max_new_tokens or (
            stage.generation.max_new_tokens if isinstance(stage, RLStage) else stage.max_length)
        module = model.module if isinstance(model, Learner) else model
        vllm = isinstance(stage, RLStage) and stage.generation.backend == "vllm"
        generator = self._vllm_generator(stage, module) if vllm else None
        judges = self.eval_services()
        tool_loop, render = self._eval_tools()
        try:
            return evaluate(module, self.tokenizer, records, self.recipe.eval, max_new,
                            render=render, sandbox_client=judges["sandbox"],
                            reward_model=judges["reward_model"], think_opened=self.think_opened,
                            suites=suites, generator=generator, tool_loop=tool_loop)
        finally:
            if generator is not None:
                generator.sleep()  # the learner's next update or build gets the memory back

    def _evaluate_initial(self, learner: Learner, stage: Any) -> None:
        """The run's first evaluation, on the first stage's Learner before it trains: under
        ZeRO-3 the model is loaded partitioned and runs only inside its engine."""
        if not self.evals:
            self._evaluate(learner, "initial", stage)

    def _eval_tools(self) -> tuple[Any, Any]:
        """(the tool loop that wraps the eval generator, the render that shows the tools) for
        `eval.tools`, the same at every evaluation; (None, the plain render) without."""
        if self.recipe.eval.tools is None:
            return None, self.render
        return self._tool_loop(self.recipe.eval.tools, [])

    def _evaluate(self, model: Any, label: str, stage: Any) -> None:
        if not self.eval_records and not self.eval_suites:
            return
        metrics = self._eval_metrics(model, stage)
        self.evals.append({"stage": label, "metrics": metrics})
        if self.dist.is_main:
            write_json_atomic(self.evals_path, self.evals)
            self.tracker.log({f"eval/{k}": v for k, v in metrics.items()},
                             step=self._last_step())

    def _last_step(self) -> int:
        rows = read_metrics(self.run_dir)
        return rows[-1]["step"] if rows else 0

    def _resume_point(self) -> int:
        """The global step a resumed run continues from (metrics after it are redone)."""
        current = self.progress.data.get("current")
        if current and (Path(current["checkpoint"]) / "trainer_state.json").exists():
            return json.loads((Path(current["checkpoint"]) / "trainer_state.json").read_text())["global_step"]
        done = [v["global_step"] for v in self.progress.data["completed"].values()]
        return max(done, default=0)

    def _truncate_metrics(self, global_step: int) -> None:
        """After a resume, drop metric lines logged after the checkpoint (they will be redone)."""
        if not self.dist.is_main:
            return
        path = self.run_dir / "metrics.jsonl"
        rows = [r for r in read_metrics(self.run_dir) if r["step"] <= global_step]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, path)
