"""Reward verifiers. Importable without torch: the trainer, `qwqrl score` and a CPU-only scoring
box all use them. Each verifier judges only the answer after the last `</think>`."""
