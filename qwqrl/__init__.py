"""qwqrl: outcome-reward RL for reasoning LLMs (the QwQ two-stage recipe).

Kept import-light on purpose: `qwqrl.verifiers` and `qwqrl.sandbox` live under this package and
must import on machines without torch, so nothing here may import torch.
"""

__version__ = "0.1.0"
