"""A tool the policy may call during a rollout: a name, an OpenAI function schema, a callable.

`function_tool(fn)` turns a plain Python function into one. The schema comes from what the
function already says about itself, so a user writes a tool once and the model sees the same
contract the code enforces:
- parameters: the signature's names, in order; those without a default are `required`;
- types: the annotations, mapped to JSON-schema types (`int` -> integer, `float` -> number,
  `str` -> string, `bool` -> boolean, `list[X]` -> array of X, `dict` -> object, `X | None`
  -> X, not required if it has a default); an unannotated parameter has no type constraint;
- descriptions: the docstring's first paragraph describes the function, and its Google-style
  `Args:` section (`name: text` or `name (type): text`, continuation lines indented) describes
  each parameter.
A parameter the schema cannot express (`*args`, `**kwargs`, a type with no JSON form) is an
error naming the function and the parameter, raised when the recipe is loaded, not mid-run.
"""
from __future__ import annotations

import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

_JSON_TYPES: dict[Any, str] = {int: "integer", float: "number", str: "string", bool: "boolean",
                               list: "array", tuple: "array", dict: "object"}
_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^(\s*)(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True)
class Tool:
    """name: what the model writes in `{"name": ...}`; schema: the OpenAI function form
    `{"type": "function", "function": {"name", "description", "parameters"}}`; fn: called with
    the call's `arguments` as keyword arguments (sync or async), returns what the model reads
    (a non-string result is shown as JSON, see `qwqrl.tools.toolset`)."""

    name: str
    schema: dict[str, Any]
    fn: Callable[..., Any] | Callable[..., Awaitable[Any]] = field(repr=False)

    def __post_init__(self) -> None:
        declared = self.schema.get("function", {}).get("name")
        if self.schema.get("type") != "function" or declared != self.name:
            raise ValueError(f"tool {self.name!r}: schema must be {{'type': 'function', 'function': "
                             f"{{'name': {self.name!r}, ...}}}}, got name {declared!r}")


def function_tool(fn: Callable[..., Any], name: str | None = None) -> Tool:
    """A `Tool` whose schema is derived from `fn`'s signature and docstring (module docstring)."""
    name = name or fn.__name__
    summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
    hints = typing.get_type_hints(fn)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ValueError(f"tool {name!r}: parameter {param.name!r} is *args/**kwargs, which a JSON "
                             "schema cannot describe; name every parameter")
        annotation = hints.get(param.name, inspect.Parameter.empty)
        schema = {} if annotation is inspect.Parameter.empty else _json_schema(annotation, name, param.name)
        if param.name in arg_docs:
            schema["description"] = arg_docs[param.name]
        properties[param.name] = schema
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
    parameters = {"type": "object", "properties": properties, "required": required}
    return Tool(name, {"type": "function", "function": {"name": name, "description": summary,
                                                        "parameters": parameters}}, fn)


def _json_schema(annotation: Any, tool: str, param: str) -> dict[str, Any]:
    """JSON schema of a Python annotation (see the module docstring for the mapping)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        if len(kept) == 1:
            return _json_schema(kept[0], tool, param)
        return {"anyOf": [_json_schema(a, tool, param) for a in kept]}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if annotation is Any:
        return {}
    base = origin or annotation
    if base not in _JSON_TYPES:
        raise ValueError(f"tool {tool!r}: parameter {param!r} is annotated {annotation!r}, which has no "
                         f"JSON-schema type; use one of int, float, str, bool, list[...], dict")
    schema: dict[str, Any] = {"type": _JSON_TYPES[base]}
    if base in (list, tuple) and args and args[-1] is not Ellipsis:
        schema["items"] = _json_schema(args[0], tool, param)
    return schema


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(the first paragraph, {parameter: description}) of a Google-style docstring."""
    lines = doc.splitlines()
    summary = " ".join(line.strip() for line in lines[:next((i for i, l in enumerate(lines)
                                                           if not l.strip()), len(lines))])
    start = next((i + 1 for i, line in enumerate(lines) if _ARGS_HEADER.match(line)), None)
    if start is None:
        return summary, {}
    args: dict[str, str] = {}
    current, indent = None, None
    for line in lines[start:]:
        match = _ARG_LINE.match(line)
        if match and (indent is None or len(match.group(1)) == indent):
            indent, current = len(match.group(1)), match.group(2).lstrip("*")
            args[current] = match.group(4).strip()
        elif line.strip() and current is not None and indent is not None \
                and len(line) - len(line.lstrip()) > indent:
            args[current] = f"{args[current]} {line.strip()}".strip()
        else:
            break  # a blank line or the next section ends `Args:`
    return summary, args
