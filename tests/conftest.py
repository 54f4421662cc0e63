"""Suite-wide settings: tests build every model and dataset locally and never reach a hub."""
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("WANDB_MODE", "disabled")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With QWQRL_FORBID_SKIPS set (`make test-vllm`), a skip is a failure: that tier exists to
    run what the main suite skips, so a skip there means the environment is broken."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("QWQRL_FORBID_SKIPS") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped, and QWQRL_FORBID_SKIPS forbids skips here: {report.longrepr}"
