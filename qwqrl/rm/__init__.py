"""Reward models for the `general` task: train one (`train`), serve one (`serve`), demo data
(`synthetic`). Scoring itself lives in `qwqrl.verifiers.reward_model`, importable without torch."""
