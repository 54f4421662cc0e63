"""The recipe schema and loader: valid recipes load, every mistake names its key path and line."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from qwqrl.errors import UserError
from qwqrl.recipe import apply_override, explain, load_recipe

BASE = """\
name: t
model:
  tiny: {preset: tiny}
stages:
  - name: cold
    kind: sft
    data:
      train: [{synthetic: arithmetic, options: {n: 10}}]
  - name: one
    kind: rl
    data:
      train: [{synthetic: arithmetic, options: {n: 10}}]
    rewards:
      math: {weight: 1.0}
      ifeval: {weight: 0.5}
    trainer: {lr: 1.0e-6, max_steps: 3}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, overrides: list[str] = ()) -> str:
    with pytest.raises(UserError) as e:
        load_recipe(write(tmp_path, text), overrides)
    return str(e.value)


def test_a_valid_recipe_loads_with_defaults(tmp_path: Path) -> None:
    recipe = load_recipe(write(tmp_path, BASE))
    rl = recipe.stages[1]
    assert rl.kind == "rl" and rl.rewards.ifeval.weight == 0.5
    assert (rl.generation.temperature, rl.generation.top_p, rl.generation.top_k) == (0.6, 0.95, 20)
    assert recipe.tokenizer.chat_template == "qwq"


@pytest.mark.parametrize("old, new, expected", [
    ("lr: 1.0e-6", "lr: -1", ["line 16", "stages[1].trainer.lr", "greater than 0", "found -1"]),
    ("max_steps: 3", "max_stepz: 3", ["stages[1].trainer.max_stepz", "did you mean `max_steps`"]),
    ("ifeval: {weight: 0.5}", "ifeval: {wieght: 0.5}", ["line 15", "stages[1].rewards.ifeval.wieght", "did you mean `weight`"]),
    ("ifeval: {weight: 0.5}", "ifeval: {weight: lots}", ["stages[1].rewards.ifeval.weight", "found 'lots'"]),
    ("ifeval: {weight: 0.5}", "ifevl: {weight: 0.5}", ["stages[1].rewards.ifevl", "did you mean `ifeval`"]),
    ("kind: sft", "kind: dpo", ["stages[0]", "kind", "'dpo'"]),
    ("tiny: {preset: tiny}", "tiny: {preset: huge}", ["model.tiny.preset", "'huge'"]),
    ("name: t\n", "", ["name: required key is missing"]),
    ("{synthetic: arithmetic, options: {n: 10}}]\n  - name: one", "{path: a.jsonl, synthetic: arithmetic}]\n  - name: one",
     ["stages[0].data.train[0]", "exactly one of `path`, `hub`, `synthetic`"]),
    ("      ifeval: {weight: 0.5}\n", "", []),  # still valid: math remains
])
def test_mistakes_name_the_key_path(tmp_path: Path, old: str, new: str, expected: list[str]) -> None:
    text = BASE.replace(old, new, 1)
    assert text != BASE
    if not expected:
        load_recipe(write(tmp_path, text))
        return
    message = error_of(tmp_path, text)
    assert str(tmp_path / "recipe.yaml") in message
    for part in expected:
        assert part in message, message


def test_an_rl_stage_without_rewards_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace("      math: {weight: 1.0}\n      ifeval: {weight: 0.5}\n", "      {}\n")
    assert "stages[1].rewards: an rl stage needs at least one reward" in error_of(tmp_path, text)


def test_group_methods_need_two_generations(tmp_path: Path) -> None:
    message = error_of(tmp_path, BASE, ["stages.1.algorithm.num_generations=1"])
    assert "stages[1].algorithm" in message and "num_generations >= 2" in message


def test_duplicate_stage_names_are_rejected(tmp_path: Path) -> None:
    assert "repeated: ['cold']" in error_of(tmp_path, BASE.replace("name: one", "name: cold"))


def test_missing_data_file_is_reported_before_anything_loads(tmp_path: Path) -> None:
    text = BASE.replace("{synthetic: arithmetic, options: {n: 10}}]\n  - name: one",
                        "{path: nowhere.jsonl}]\n  - name: one")
    message = error_of(tmp_path, text)
    assert "stages[0].data.train[0].path: file not found: nowhere.jsonl" in message


def test_yaml_syntax_errors_name_the_file(tmp_path: Path) -> None:
    assert "not valid YAML" in error_of(tmp_path, "name: [unclosed\n")
    assert "a recipe is a YAML mapping" in error_of(tmp_path, "- just\n- a list\n")


def test_overrides_are_typed_and_validated(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    recipe = load_recipe(path, ["stages.1.trainer.lr=5e-7", "stages.1.algorithm.kl={beta: 0.01}",
                                "seed=7"])
    assert recipe.stages[1].trainer.lr == 5e-7 and recipe.stages[1].algorithm.kl.beta == 0.01
    assert recipe.seed == 7
    assert "stages[1].trainer.lr" in error_of(tmp_path, BASE, ["stages.1.trainer.lr=fast"])
    assert "needs a list index below 2" in error_of(tmp_path, BASE, ["stages.5.trainer.lr=1"])
    assert "expected KEY.PATH=VALUE" in error_of(tmp_path, BASE, ["stages.1.trainer.lr"])


def test_override_creates_missing_mappings() -> None:
    raw = yaml.safe_load(BASE)
    apply_override(raw, "logging.wandb.mode=disabled")
    assert raw["logging"] == {"wandb": {"mode": "disabled"}}


def test_explain_lists_fields_with_help() -> None:
    lines = explain()
    assert any(line.startswith("stages[](kind=rl).algorithm.epsilon_high: default 0.28. DAPO")
               for line in lines)
    assert any(line.startswith("model.rope_scaling.rope_type") for line in lines)
