"""Tiny end-to-end runs: recipes written to tmp_path, a tiny random reward model on disk."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# ChatML without a forced `<think>`: a random model's whole completion is then its answer, so
# the verifier has something to judge from the first step.
PLAIN_CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

# A small Qwen2 so each RL step takes well under a second on 2 cores.
SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "intermediate_size": 128}


def word_limit_data(tmp_path: Path, n: int = 32) -> Path:
    """IFEval records asking for fewer than 2 words: a random byte-level model meets that about
    half the time, and can learn to meet it always by emitting fewer word characters."""
    rows = [{"id": f"w{i}", "task": "ifeval", "prompt": f"Say {i} in few words.",
             "instruction_id_list": ["length_constraints:number_words"],
             "kwargs": [{"relation": "less than", "num_words": 2}]} for i in range(n)]
    path = tmp_path / "words.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def rl_recipe(tmp_path: Path, run: str = "run", steps: int = 12, **algorithm: Any) -> dict[str, Any]:
    """An RL-only recipe on `word_limit_data` with the real ifeval verifier as the reward."""
    return {
        "name": run,
        "seed": 0,
        "output_dir": str(tmp_path / run),
        "tokenizer": {"chat_template": PLAIN_CHATML},
        "model": {"tiny": {"preset": "tiny", "seed": 0, "overrides": SMALL}},
        "stages": [{
            "name": "rl",
            "kind": "rl",
            "data": {"train": [{"path": str(word_limit_data(tmp_path))}]},
            "rewards": {"ifeval": {"weight": 1.0}},
            "algorithm": {"num_generations": 8, **algorithm},
            "generation": {"temperature": 1.0, "top_p": 1.0, "top_k": 0, "max_new_tokens": 8},
            "trainer": {"lr": 3e-3, "max_steps": steps, "batch_size": 4, "micro_batch_size": 32},
        }],
        "logging": {"wandb": {"mode": "disabled"}},
    }


def write(tmp_path: Path, recipe: dict[str, Any], file: str = "recipe.yaml") -> Path:
    path = tmp_path / file
    path.write_text(yaml.safe_dump(recipe))
    return path
