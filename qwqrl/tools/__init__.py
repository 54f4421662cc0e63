"""Tools during rollouts: the policy calls functions while it reasons (docs/tools.md).

- `Tool`, `function_tool` (tool.py): a callable with its OpenAI function schema, derived from a
  Python function's signature and docstring.
- `python_tool` (python_tool.py): the built-in tool that runs code in the stage's sandbox.
- `Toolset` (toolset.py): a stage's tools from the recipe, and concurrent, timed-out execution
  that turns every failure into text for the model.
- `ToolRolloutGenerator` (multi_turn.py): wraps a generator; generation stops at `</tool_call>`,
  the calls run, the responses are appended as a tool turn, generation continues from the
  token ids, up to `max_turns` and the token budget.

Importing this package does not import torch (the loop imports it only when it runs).
"""
from qwqrl.tools.multi_turn import ToolRolloutGenerator
from qwqrl.tools.python_tool import python_tool
from qwqrl.tools.tool import Tool, function_tool
from qwqrl.tools.toolset import ToolResult, Toolset, import_function

__all__ = ["Tool", "ToolResult", "ToolRolloutGenerator", "Toolset", "function_tool",
           "import_function", "python_tool"]
