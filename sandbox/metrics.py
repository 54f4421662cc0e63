"""Prometheus counters for the sandbox server, rendered by hand (no client library needed)."""
from __future__ import annotations

from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()     # by endpoint
        self.rejected: Counter[str] = Counter()     # 429s by endpoint
        self.verdicts: Counter[str] = Counter()     # per test case, by status
        self.runs = 0
        self.run_seconds = 0.0
        self.slot_restarts = 0
        self.slot_faults = 0
        self.inflight = 0

    def render(self, idle_slots: int, slots: int) -> str:
        lines = []

        def family(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}"])
            lines.extend(f"{name}{labels} {value}" for labels, value in samples)

        family("qwqrl_sandbox_requests_total", "counter", "HTTP requests accepted, by endpoint.",
               [(f'{{endpoint="{k}"}}', v) for k, v in sorted(self.requests.items())])
        family("qwqrl_sandbox_rejected_total", "counter", "Requests answered 429 (queue full).",
               [(f'{{endpoint="{k}"}}', v) for k, v in sorted(self.rejected.items())])
        family("qwqrl_sandbox_verdicts_total", "counter", "Test-case verdicts, by status.",
               [(f'{{status="{k}"}}', v) for k, v in sorted(self.verdicts.items())])
        family("qwqrl_sandbox_runs_total", "counter", "Program runs (compiles included).", [("", self.runs)])
        family("qwqrl_sandbox_run_seconds_total", "counter", "Wall seconds spent in runs.",
               [("", round(self.run_seconds, 6))])
        family("qwqrl_sandbox_slot_restarts_total", "counter", "Slots recycled.", [("", self.slot_restarts)])
        family("qwqrl_sandbox_slot_faults_total", "counter", "Sandbox faults (SE).", [("", self.slot_faults)])
        family("qwqrl_sandbox_inflight", "gauge", "Admitted evaluations not yet answered.", [("", self.inflight)])
        family("qwqrl_sandbox_slots", "gauge", "Slots, and how many are idle.",
               [('{state="total"}', slots), ('{state="idle"}', idle_slots)])
        return "\n".join(lines) + "\n"
