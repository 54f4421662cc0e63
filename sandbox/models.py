"""Pydantic models for the HTTP request bodies (the contract other parts of qwqrl depend on).

Validation errors name the field and what was expected; the server turns them into 422s.
`tests` is normalized first (APPS/TACO `input_output` form, JSON strings) by `requests.py`.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from qwqrl.sandbox.requests import normalize_tests

MAX_CODE_CHARS = 1_000_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Limits(Strict):
    time_s: float = Field(2.0, gt=0, description="CPU seconds per test (wall backstop: 2x + 1 s)")
    memory_mb: int = Field(512, ge=16, description="address space per process, MiB; a run's processes "
                           "together are capped at this plus 128 MiB for the slot (cgroup)")


class StdioCase(Strict):
    input: str = ""
    output: str


class StdioTests(Strict):
    type: Literal["stdio"]
    cases: list[StdioCase] = Field(min_length=1)
    float_tolerance: float | None = Field(None, ge=0)


class CallCase(Strict):
    args: list[Any]
    expected: Any


class CallTests(Strict):
    type: Literal["call"]
    fn_name: str = Field(min_length=1)
    cases: list[CallCase] = Field(min_length=1)
    float_tolerance: float | None = Field(None, ge=0)


class AssertTests(Strict):
    type: Literal["assert"]
    asserts: list[str] = Field(min_length=1)

    @field_validator("asserts")
    @classmethod
    def _compiles(cls, asserts: list[str]) -> list[str]:
        for i, snippet in enumerate(asserts):
            try:
                compile(snippet, f"<assert {i}>", "exec")
            except SyntaxError as e:
                raise ValueError(f"asserts[{i}] is not valid Python: {e.msg}") from None
        return asserts


Tests = Annotated[Union[StdioTests, CallTests, AssertTests], Field(discriminator="type")]


class RunRequest(Strict):
    language: str = "python"
    code: str = Field(max_length=MAX_CODE_CHARS)
    stdin: str = ""
    limits: Limits = Field(default_factory=Limits)


class EvaluateRequest(Strict):
    language: str = "python"
    code: str = Field(max_length=MAX_CODE_CHARS)
    tests: Tests
    limits: Limits = Field(default_factory=Limits)
    stop_on_first_fail: bool = False
    all_or_nothing: bool = False

    @model_validator(mode="before")
    @classmethod
    def _normalize_tests(cls, data: Any) -> Any:
        if isinstance(data, dict) and "tests" in data:
            data = dict(data, tests=normalize_tests(data["tests"]))
        return data
