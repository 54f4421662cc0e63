"""Code records made by the converters are judged right by the real sandbox: a correct program
passes every case and a wrong one does not, for each test layout the converters translate
(Codeforces stdio, LiveCodeBench functional on `class Solution`, compressed private cases,
TACO's APPS input_output)."""
from __future__ import annotations

import pytest

from qwqrl.data.converters import CONVERTERS
from qwqrl.sandbox.client import SandboxClient
from qwqrl.sandbox.local import LocalSandbox
from qwqrl.verifiers import code


def converted(name: str, index: int) -> dict:
    converter = CONVERTERS[name]
    return converter.fn(converter.fixture_rows()[index])


def answer(body: str) -> str:
    return f"reasoning\n</think>\n```python\n{body}\n```\n"


DEATH_NOTE = """n, m = map(int, input().split())
a = list(map(int, input().split()))
filled, out = 0, []
for x in a:
    total = filled + x
    out.append(total // m)
    filled = total % m
print(*out, "")"""

CASES = [  # (converter, fixture row, a correct program, a wrong one)
    ("codeforces", 0, DEATH_NOTE, "print(0)"),
    ("deepcoder", 1, "class Solution:\n    def countPairs(self, nums):\n"
                     "        return sum(nums[i] == nums[j] for i in range(len(nums))"
                     " for j in range(i + 1, len(nums)))",
     "class Solution:\n    def countPairs(self, nums):\n        return len(nums)"),
    ("deepcoder", 3, "def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b"),
    ("livecodebench", 1, "class Solution:\n    def countTarget(self, nums, target):\n"
                         "        return nums.count(target)",
     "class Solution:\n    def countTarget(self, nums, target):\n        return len(nums)"),
    ("livecodebench", 2, "print(2 * int(input()))", "print(4)"),
]


@pytest.fixture(scope="module")
def client():
    with LocalSandbox(workers=2) as sandbox:
        yield SandboxClient([sandbox.url])


def test_correct_programs_pass_every_converted_case_and_wrong_ones_fail(client):
    records = []
    for name, index, right, wrong in CASES:
        record = converted(name, index)
        records += [dict(record, completion=answer(right)), dict(record, completion=answer(wrong))]
    verdicts = code.verify_batch(records, client=client)
    scores = [(v.score, v.detail.get("passed"), v.detail.get("total")) for v in verdicts]
    for (name, index, *_), right, wrong in zip(CASES, scores[::2], scores[1::2]):
        assert right[0] == 1.0 and right[1] == right[2] >= 1, (name, index, right)
        assert wrong[0] < 1.0, (name, index, wrong)
