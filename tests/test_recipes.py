"""Every shipped recipe validates, with its local data files present: users start from these."""
from __future__ import annotations

from pathlib import Path

import pytest

from qwqrl.config import RLStage
from qwqrl.recipe import load_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
ALL = sorted(RECIPES.rglob("*.yaml"))


def test_the_real_scale_recipes_are_there():
    names = {str(p.relative_to(RECIPES)) for p in ALL}
    assert {"qwq-32b/two-stage.yaml", "qwen2.5-1.5b/single-gpu.yaml"} <= names


@pytest.mark.parametrize("path", ALL, ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_validates(path):
    load_recipe(path)


def test_qwq_recipe_is_cold_start_then_verifier_rl_then_general_rl():
    recipe = load_recipe(RECIPES / "qwq-32b" / "two-stage.yaml")
    kinds = [(s.name, s.kind) for s in recipe.stages]
    assert kinds == [("cold_start", "sft"), ("stage1", "rl"), ("stage2", "rl")]
    stage1, stage2 = recipe.stages[1], recipe.stages[2]
    assert isinstance(stage1, RLStage) and isinstance(stage2, RLStage)
    assert set(stage1.rewards.enabled()) >= {"math", "code"}
    assert "general" not in stage1.rewards.enabled()
    # stage two replays stage-one prompts, so it must still be able to score them
    assert set(stage2.rewards.enabled()) >= {"general", "ifeval", "math", "code"}
    assert stage2.data.replay_previous > 0
    assert stage2.trainer.max_steps < stage1.trainer.max_steps
    assert stage2.trainer.lr < stage1.trainer.lr


def test_rollouts_fit_the_vllm_context_in_every_rl_stage():
    for path in ALL:
        for stage in load_recipe(path).stages:
            if isinstance(stage, RLStage) and stage.generation.vllm.max_model_len:
                g = stage.generation
                assert (g.max_prompt_tokens or 0) + g.max_new_tokens <= g.vllm.max_model_len, \
                    f"{path}: {stage.name}"


def _hub_sources(recipe):
    return [s for stage in recipe.stages for s in stage.data.train] + list(recipe.eval.sets)


@pytest.mark.parametrize("name", ["qwq-32b/two-stage.yaml", "qwen2.5-1.5b/single-gpu.yaml"])
def test_every_hub_source_of_the_real_recipes_names_a_converter(name):
    """Public sets never fit the record contract as published (issue 11)."""
    sources = [s for s in _hub_sources(load_recipe(RECIPES / name)) if s.hub]
    assert sources and all(s.converter for s in sources), [s.hub for s in sources]


def test_recipe_check_dry_runs_the_converters_of_the_real_recipe_without_the_hub(
        monkeypatch, capsys):
    import datasets

    from qwqrl.cli import main

    def no_hub(*args, **kwargs):
        raise AssertionError("recipe check must not load datasets")

    monkeypatch.setattr(datasets, "load_dataset", no_hub)
    path = str(RECIPES / "qwq-32b" / "two-stage.yaml")
    assert main(["recipe", "check", path]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "converters dry-run on their fixture rows: aime, codeforces, deepcoder, ifeval, "
        "mixture_of_thoughts, openr1_math, ultrafeedback, xlam_function_calling")
    # the dry-run is real: a task that contradicts the converter fails the check
    assert main(["recipe", "check", path, "--set", "stages.2.data.train.1.task=math"]) == 2
    err = capsys.readouterr().err
    assert ("stages[2].data.train[1].converter (ifeval): fixtures/ifeval.jsonl:1: "
            'field "answer" is required for task "math"') in err
