"""A Learner after the process group was torn down and rebuilt by someone else.

vLLM's in-process engine destroys the torch.distributed group it joined when it shuts down;
DeepSpeed's module-level cache of groups then points at a dead group, and the next Learner
failed with "Group ... is not registered" (seen in `make test-vllm`, a Learner built after an
engine). `forget_stale_deepspeed_groups` drops that cache."""
from __future__ import annotations

import torch

from qwqrl.config import TrainerConfig
from qwqrl.distributed import init_distributed
from qwqrl.learner import Learner
from qwqrl.tiny import build_model, build_tokenizer

from tests.trainer.conftest import SMALL


def test_a_learner_is_built_after_the_world_was_destroyed_and_rebuilt() -> None:
    init_distributed()
    tok = build_tokenizer()
    cfg = TrainerConfig(lr=1e-3, max_steps=1)
    Learner(build_model(tok, seed=0, **SMALL), cfg, total_steps=1)
    torch.distributed.destroy_process_group()  # as vLLM does, behind DeepSpeed's back
    init_distributed()
    learner = Learner(build_model(tok, seed=0, **SMALL), cfg, total_steps=1)
    assert learner.engine.world_size == 1
