"""IFEval instruction-following verification: the official checks, offline and deterministic."""
from .registry import INSTRUCTIONS, InstructionError
from .verifier import build_checks, ifeval_reward, judge, verify

__all__ = ["INSTRUCTIONS", "InstructionError", "build_checks", "ifeval_reward", "judge", "verify"]
