"""The cold-start stage: supervised fine-tuning on reasoning traces with TRL's SFTTrainer.

QwQ's RL starts from a cold-start checkpoint that already writes `<think>` reasoning and a final
answer in the expected format. Records carry `prompt` and `completion` (the reference response
after the template's `<think>\\n`); the loss covers only the completion. With `stop_at`, the
stage evaluates every `trainer.eval_every` steps and stops once a held-out metric reaches the
threshold, so RL still has room to improve (see shared notes on the tiny demo).
"""
from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qwqrl.config import SFTStage
from qwqrl.errors import UserError


def length_bucketed(rows: list[dict[str, str]], batch: int, seed: int) -> list[dict[str, str]]:
    """Rows ordered so that each consecutive `batch` holds sequences of similar length, with the
    batches in random order. On mixed data this cuts padding several-fold; unlike a sampler that
    sorts large windows, it never runs dozens of steps of one kind of example in a row."""
    order = sorted(range(len(rows)), key=lambda i: len(rows[i]["prompt"]) + len(rows[i]["completion"]))
    batches = [order[i:i + batch] for i in range(0, len(order), batch)]
    random.Random(seed).shuffle(batches)
    return [rows[i] for b in batches for i in b]


def sft_dataset(records: list[dict[str, Any]], tokenizer: Any, render: Callable[[dict[str, Any]], str],
                bucket: int | None = None, seed: int = 0):
    """prompt/completion text pairs; the prompt ends inside `<think>\\n` like generation's.
    With `bucket`, rows come length-bucketed in batches of that size (`length_bucketed`)."""
    import datasets

    missing = [r.get("id", i) for i, r in enumerate(records) if not r.get("completion")]
    if missing:
        raise UserError(f"sft records need a `completion` (the target response); missing in "
                         f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    rows = [{"prompt": render(r),
             "completion": r["completion"] + tokenizer.eos_token} for r in records]
    if bucket:
        rows = length_bucketed(rows, bucket, seed)
    return datasets.Dataset.from_list(rows)


def run_sft(stage: SFTStage, model: Any, tokenizer: Any, records: list[dict[str, Any]],
            out_dir: Path, seed: int, render: Callable[[dict[str, Any]], str],
            evaluate: Callable[[Any], dict[str, float]] | None, log: Callable[[dict, int], None],
            resume: bool, step_offset: int) -> int:
    """Train in place; returns the number of optimizer steps taken."""
    import torch
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    t = stage.trainer
    param = next(model.parameters())
    accumulation = max(1, t.batch_size // t.micro_batch_size)
    cfg = SFTConfig(
        output_dir=str(out_dir), max_steps=t.max_steps, learning_rate=t.lr,
        per_device_train_batch_size=min(t.micro_batch_size, t.batch_size),
        gradient_accumulation_steps=accumulation, warmup_steps=t.warmup_steps,
        lr_scheduler_type={"constant": "constant_with_warmup", "cosine": "cosine",
                           "linear": "linear"}[t.schedule],
        weight_decay=t.weight_decay, max_grad_norm=t.grad_clip, max_length=stage.max_length,
        logging_steps=1, report_to=[], seed=seed, data_seed=seed,
        save_strategy="steps" if stage.checkpoint.every else "no",
        save_steps=stage.checkpoint.every or 500, save_total_limit=stage.checkpoint.keep,
        bf16=param.dtype == torch.bfloat16, use_cpu=not param.is_cuda, disable_tqdm=False,
        completion_only_loss=True, dataloader_num_workers=0,
        train_sampling_strategy="sequential" if stage.group_by_length else "random",
    )

    class Hooks(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                log({"loss": logs["loss"], "learning_rate": logs.get("learning_rate", 0.0),
                     "grad_norm": logs.get("grad_norm", 0.0),
                     "mean_token_accuracy": logs.get("mean_token_accuracy", 0.0)},
                    step_offset + state.global_step)

        def on_step_end(self, args, state, control, **kwargs):
            every = t.eval_every
            if stage.stop_at is None or not every or state.global_step % every or evaluate is None:
                return control
            metrics = evaluate(model)
            log({f"eval/{k}": v for k, v in metrics.items()}, step_offset + state.global_step)
            if metrics.get(stage.stop_at.metric, float("-inf")) >= stage.stop_at.threshold:
                control.should_training_stop = True
            return control

    trainer = SFTTrainer(model=model, args=cfg, train_dataset=sft_dataset(
        records, tokenizer, render, bucket=cfg.per_device_train_batch_size if stage.group_by_length else None,
        seed=seed),
                         processing_class=tokenizer, callbacks=[Hooks()])
    has_checkpoint = resume and any(out_dir.glob("checkpoint-*"))
    trainer.train(resume_from_checkpoint=True if has_checkpoint else None)
    return trainer.state.global_step
