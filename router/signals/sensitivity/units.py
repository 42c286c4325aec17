"""Which text of a chat request is scanned for sensitive data: every string that is sent upstream.

Message content, content-part text and tool-call arguments are the bulk of a request: each is its
own unit, scanned alone. Every other string that leaves (`user`, `metadata`, `stop`, a message's
`name`, tool-call ids and names, refusal parts, tool names, descriptions and parameter schemas,
`response_format`, and the keys and values of fields turnout does not know) is a field unit that
carries its JSON path; all of those are joined and scanned in one pass, an object's key next to
its value ("password: ...") so that a detector sees the pair. Never scanned: `model` (the
backend's own name replaces it), `turnout` (never sent), the role and type words, and attachments
(data: URLs, audio and file data), which are not text. This module only reads the request.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from router.schema import ChatRequest
from router.signals.sensitivity.findings import Finding

Path = tuple[str | int, ...]

REQUEST_SKIPPED = frozenset(("model", "turnout", "messages"))  # replaced, never sent, walked apart
STRUCTURAL = frozenset(("role", "type"))  # words from a fixed list
ATTACHMENT_DATA = frozenset(("data", "file_data"))  # base64 of an audio clip or a file
JOIN = "\n\n"
PAIR = ": "


@dataclass(frozen=True, slots=True)
class Unit:
    """One piece of request text that is scanned and, under `redact`, rewritten on its own."""

    message: int  # the message's index; -1 for a field of the request itself
    part: str  # "content", "part:<k>", "args:<j>", or a field's path ("name", "tools.0.function.description")
    text: str
    path: Path = ()  # a field unit's JSON path from the request's root; () for the three kinds above
    key: bool = False  # the text is the last step of `path`: an object's key, not a value

    @property
    def maskable(self) -> bool:
        """Whether a placeholder such as [EMAIL_1] may replace the text: not in an identifier that
        upstreams require to match ^[a-zA-Z0-9_-]+$ (function, custom tool and schema names, a
        message's `name`, tool-call ids, which Anthropic checks)."""
        path = self.path
        if self.key or not path:
            return True
        last = path[-1]
        in_message = path[0] == "messages"
        if last == "name":
            schema_name = path[:2] == ("response_format", "json_schema") and len(path) == 3
            legacy = (path[0] == "functions" and len(path) == 3) or path == ("function_call", "name")
            called = path[-2] in ("function", "custom")
            return not (called or legacy or schema_name or (in_message and len(path) == 3))
        if last == "tool_call_id":
            return not (in_message and len(path) == 3)
        return not (last == "id" and in_message and len(path) == 5 and path[2] == "tool_calls")


def text_units(request: ChatRequest) -> list[Unit]:
    """Message content, content-part text and tool-call arguments."""
    units: list[Unit] = []
    for i, message in enumerate(request.messages):
        if isinstance(message.content, str):
            units.append(Unit(i, "content", message.content))
        elif message.content:
            units.extend(
                Unit(i, f"part:{k}", part.text) for k, part in enumerate(message.content) if part.text
            )
        for j, call in enumerate(message.tool_calls or []):
            if call.function is not None:  # a custom tool's input is a field unit
                units.append(Unit(i, f"args:{j}", call.function.arguments))
    return units


def field_units(request: ChatRequest) -> list[Unit]:
    """Every other string sent upstream, with its path. Empty for a request of plain messages."""
    units: list[Unit] = []
    _walk_model(request, (), -1, units, REQUEST_SKIPPED)
    for i, message in enumerate(request.messages):
        base: Path = ("messages", i)
        _walk_model(message, base, i, units, STRUCTURAL | {"content", "tool_calls"})
        if isinstance(message.content, list):
            for k, part in enumerate(message.content):
                _walk_model(part, (*base, "content", k), i, units, STRUCTURAL | {"text"})
        for j, call in enumerate(message.tool_calls or []):
            _walk_model(call, (*base, "tool_calls", j), i, units, STRUCTURAL | {"function"})
            if call.function is not None:
                _walk_model(call.function, (*base, "tool_calls", j, "function"), i, units, {"arguments"})
    return units


def _walk_model(
    model: BaseModel, path: Path, message: int, units: list[Unit], skip: frozenset[str] | set[str]
) -> None:
    """The fields a caller set, less `skip`; the name of a field turnout does not know is sent too."""
    extra = model.__pydantic_extra__ or {}
    for name in model.model_fields_set - skip:
        if name in extra:
            units.append(Unit(message, _label((*path, name), message), name, (*path, name), key=True))
        _walk(getattr(model, name), (*path, name), message, units)


def _walk(value: Any, path: Path, message: int, units: list[Unit]) -> None:
    if isinstance(value, str):
        if value and not _attachment(path, value):
            units.append(Unit(message, _label(path, message), value, path))
    elif isinstance(value, BaseModel):
        _walk_model(value, path, message, units, STRUCTURAL)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and key:
                units.append(Unit(message, _label((*path, key), message), key, (*path, key), key=True))
            _walk(item, (*path, key), message, units)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, (*path, index), message, units)


def _attachment(path: Path, value: str) -> bool:
    in_part = len(path) >= 5 and path[0] == "messages" and path[2] == "content"
    if not in_part:
        return False
    return path[-1] in ATTACHMENT_DATA or (path[-1] == "url" and value.startswith("data:"))


def _label(path: Path, message: int) -> str:
    steps = path[2:] if message >= 0 else path
    return ".".join(str(step) for step in steps)


def scan_joined(scan: Any, units: list[Unit]) -> list[tuple[Unit, Finding]]:
    """Scan many short strings in one pass: joined (a key and its value as "key: value", others a
    paragraph apart), with each finding clipped to every unit it overlaps."""
    pieces: list[str] = []
    starts: list[int] = []
    offset = 0
    for index, unit in enumerate(units):
        if index:
            previous = units[index - 1]
            # an identifier's key is not read before it: "name: Green" would be a form's person,
            # where a schema named green is not
            paired = previous.key and unit.path == previous.path and not unit.key and unit.maskable
            glue = PAIR if paired else JOIN
            pieces.append(glue)
            offset += len(glue)
        starts.append(offset)
        pieces.append(unit.text)
        offset += len(unit.text)
    found: list[tuple[Unit, Finding]] = []
    for finding in scan("".join(pieces)):
        first = max(0, bisect_right(starts, finding.start) - 1)
        for index in range(first, len(units)):
            start = starts[index]
            if start >= finding.end:
                break
            end = start + len(units[index].text)
            if end <= finding.start:
                continue
            clipped = replace(
                finding, start=max(finding.start, start) - start, end=min(finding.end, end) - start
            )
            found.append((units[index], clipped))
    return found
