"""Train a Bradley-Terry reward model from preference pairs: users (and the demo) build their own.

1. Pairs are JSONL rows `{"prompt", "chosen", "rejected"}`; the prompt is a string or chat
   messages, chosen/rejected are completions. Only their answers (after the last `</think>`, the
   whole text when there is none) are trained on, encoded exactly as the scorer encodes them
   (`qwqrl.verifiers.reward_model.encode_pair`), so training and scoring never disagree on format.
2. TRL's RewardTrainer minimises -log sigmoid(r_chosen - r_rejected) on the pre-tokenized pairs,
   in float32, reporting nowhere, on the GPU when there is one (CPU otherwise).
3. The model and tokenizer are written to a temporary folder beside `output_dir`, then renamed
   into place: a crash never leaves a half-written reward model where a run expects one.

    qwqrl rm train pairs.jsonl -o runs/rm --tiny tiny --epochs 2      # a tiny RM from scratch
    qwqrl rm train pairs.jsonl -o runs/rm --base path/to/Qwen2.5-0.5B  # a head on a base model
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from qwqrl.errors import UserError
from qwqrl.verifiers.reward_model import answer_of, as_messages, encode_pair

log = logging.getLogger(__name__)


def load_pairs(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read and check a pairs JSONL file; a bad line raises UserError naming the file and line."""
    rows = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise UserError(f"cannot read pairs file {path}: {e.strerror}") from e
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
        check_pair(row, f"{path}:{lineno}")
        rows.append(row)
    if not rows:
        raise UserError(f"{path}: no preference pairs")
    return rows


def check_pair(row: Any, where: str) -> None:
    """Raise UserError unless `row` is a usable preference pair; `where` starts the message."""
    if not isinstance(row, dict):
        raise UserError(f"{where}: expected a JSON object with prompt, chosen and rejected")
    for key in ("prompt", "chosen", "rejected"):
        if key not in row:
            raise UserError(f"{where}: missing `{key}`")
    try:
        as_messages(row["prompt"])
    except TypeError as e:
        raise UserError(f"{where}: {e}") from e
    for key in ("chosen", "rejected"):
        if not isinstance(row[key], str):
            raise UserError(f"{where}: `{key}` must be a string")
        if answer_of(row[key], think_opened=False) is None:
            raise UserError(f"{where}: `{key}` opens <think> and never closes it")


def train_reward_model(pairs: list[dict[str, Any]] | str | os.PathLike[str], base: Any,
                       tokenizer: Any, output_dir: str | os.PathLike[str], *,
                       epochs: float = 1.0, steps: int | None = None, lr: float = 1e-4,
                       batch_size: int = 16, seed: int = 0, max_length: int = 1024,
                       overwrite: bool = False) -> Path:
    """Train a reward model on `pairs` and save it (with its tokenizer) to `output_dir`.

    `base`: a sequence-classification model object (then `tokenizer` is required) or a path that
    `AutoModelForSequenceClassification` loads with one label (a causal LM gets a new score
    head; `tokenizer` None loads the path's). `steps`, when set, overrides `epochs`. Returns the
    output path.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    output = Path(output_dir)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise UserError(f"{output} exists and is not empty (pass overwrite to replace it)")
    rows = load_pairs(pairs) if isinstance(pairs, (str, os.PathLike)) else pairs
    if not rows:
        raise UserError("no preference pairs to train on")
    for i, row in enumerate(rows):
        check_pair(row, f"pairs[{i}]")
    if isinstance(base, (str, os.PathLike)):
        try:
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(base)
            base = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1,
                                                                      dtype=torch.float32)
        except OSError as e:
            raise UserError(f"cannot load base model {base}: {e}") from e
    elif tokenizer is None:
        raise ValueError("pass the tokenizer along with a model object")

    def encode(row: dict[str, Any], key: str) -> list[int]:
        return encode_pair(tokenizer, row["prompt"], answer_of(row[key], think_opened=False),
                           max_length)

    dataset = Dataset.from_list([{"chosen_ids": encode(r, "chosen"),
                                  "rejected_ids": encode(r, "rejected")} for r in rows])
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.tmp-", dir=output.parent))
    try:
        # Checkpointing (TRL turns it on) is off: small RMs train faster without recomputation.
        # transformers 5 renamed it from gradient to activation checkpointing.
        no_checkpointing = {("activation_checkpointing"
                             if "activation_checkpointing" in RewardConfig.__dataclass_fields__
                             else "gradient_checkpointing"): False}
        config = RewardConfig(
            output_dir=str(staging), num_train_epochs=epochs, max_steps=steps or -1,
            learning_rate=lr, per_device_train_batch_size=batch_size, seed=seed,
            use_cpu=not torch.cuda.is_available(), bf16=False, max_length=None,
            report_to="none", save_strategy="no", logging_steps=10, disable_tqdm=True,
            **no_checkpointing)
        trainer = RewardTrainer(model=base, args=config, train_dataset=dataset,
                                processing_class=tokenizer)
        result = trainer.train()
        log.info("reward model: %d steps, train loss %.4f", result.global_step,
                 result.training_loss)
        trainer.save_model(str(staging))
        _replace_dir(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def _replace_dir(new: Path, target: Path) -> None:
    """Rename `new` to `target`; an existing `target` is moved aside first, then deleted."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)
