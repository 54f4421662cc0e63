"""Shared fixtures: the tiny tokenizer and a random tiny reward model saved to disk."""
from __future__ import annotations

from pathlib import Path

import pytest

from qwqrl.tiny import build_reward_model, build_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="session")
def rm_dir(tokenizer, tmp_path_factory) -> Path:
    """A randomly initialised tiny RM: its scores are arbitrary but depend on every input token."""
    path = tmp_path_factory.mktemp("random-rm")
    build_reward_model(tokenizer, seed=0).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
