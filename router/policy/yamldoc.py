"""YAML files that users edit (policies, eval suites): parse them keeping the node tree, so that every
error can name the file, the line and the key (`policies/x.yaml:12: routes.0.when: unknown key`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Loc = tuple[str | int, ...]


class YamlSyntaxError(Exception):
    """Not YAML at all; the message is `file:line: not valid YAML: why`."""


def compose(text: str, path: Path) -> tuple[yaml.Node | None, Any]:
    """The node tree (for line numbers) and the data; a key written twice in one mapping is an
    error (YAML loaders keep the last one silently, so an edit could be quietly undone)."""
    try:
        node, data = yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        why = " ".join(
            str(getattr(error, "problem", None) or error).split()
        )  # one line, whatever the loader says
        raise YamlSyntaxError(f"{path}:{line}: not valid YAML: {why}") from None
    _check_duplicates(node, (), path)
    return node, data


def _check_duplicates(node: yaml.Node | None, loc: Loc, path: Path) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else str(key.start_mark)
            if name in seen:
                dotted = ".".join(str(part) for part in (*loc, name))
                raise YamlSyntaxError(
                    f"{path}:{key.start_mark.line + 1}: {dotted}: duplicate key (an earlier line sets it too)"
                )
            seen.add(name)
            _check_duplicates(value, (*loc, name), path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicates(item, (*loc, index), path)


def line_of(node: yaml.Node | None, loc: Loc) -> int:
    """1-based line of the YAML node at `loc` (of its key, for a mapping entry), or of the deepest
    ancestor that exists."""
    line = node.start_mark.line + 1 if node is not None else 1
    last = len(loc) - 1
    for position, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            # the key's own line for the last step; a key met earlier on the path is walked into,
            # even when it has the same name as the last one (`any` inside `any`)
            node = match[1] if position != last else match[0]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return line


def where(path: Path, node: yaml.Node | None, loc: Loc, why: str) -> str:
    key = ".".join(str(part) for part in loc) or "(top level)"
    return f"{path}:{line_of(node, loc)}: {key}: {why}"


def reason(error: Any) -> str:
    """A pydantic error entry in the words of someone editing the file."""
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "value_error":  # a validator's own words, without pydantic's "Value error, "
        return str(error["msg"]).removeprefix("Value error, ")
    return str(error["msg"])
