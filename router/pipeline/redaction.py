"""The `redact` rule: sensitive spans become typed placeholders before a request leaves, and the
placeholders in the answer become the original text again before the caller sees it.

`[EMAIL_1]` stands for the first distinct email address of the request, the same value always
gets the same placeholder, and the mapping lives only in memory for the request's lifetime. This
module must never log the mapping: it is the sensitive text itself.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from router.backends.base import ChunkStream, WrappedStream
from router.chat_types import ContentPart
from router.schema import ChatRequest
from router.signals.collect import Located
from router.signals.sensitivity.units import Unit

PLACEHOLDER = re.compile(r"\[[A-Z_]+_\d+\]")
HOLD_BACK = 32  # longest placeholder a stream may have split between two chunks


class Redactor:
    def __init__(self, taken: set[str] | frozenset[str] = frozenset()) -> None:
        """`taken`: placeholder-shaped text the request already holds ("reply with the literal
        text [EMAIL_1]"), which no placeholder may be, or the answer's would be restored."""
        self.originals: dict[str, str] = {}  # placeholder → original text
        self._by_value: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self._taken = taken

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._by_value:
            token = ""
            while not token or token in self._taken:
                self._counts[kind] = self._counts.get(kind, 0) + 1
                token = f"[{kind.upper()}_{self._counts[kind]}]"
            self._by_value[key] = token
            self.originals[token] = value
        return self._by_value[key]

    def redact_text(self, text: str, spans: list[tuple[int, int, str]]) -> str:
        for start, end, kind in sorted(spans, reverse=True):
            text = text[:start] + self.placeholder(kind, text[start:end]) + text[end:]
        return text

    def restore(self, text: str) -> str:
        if "[" not in text:
            return text
        return PLACEHOLDER.sub(lambda match: self.originals.get(match.group(0), match.group(0)), text)


def redact_request(request: ChatRequest, findings: list[Located]) -> tuple[ChatRequest, Redactor]:
    """A copy of the request with every finding replaced by its placeholder."""
    redactor = Redactor(set(PLACEHOLDER.findall(orjson.dumps(request.model_dump(mode="json")).decode())))
    spans: dict[tuple[int, str], list[tuple[int, int, str]]] = {}
    fields: dict[Unit, list[tuple[int, int, str]]] = {}
    for located in findings:
        span = (located.finding.start, located.finding.end, located.finding.type)
        if located.unit.path:
            fields.setdefault(located.unit, []).append(span)
        else:
            spans.setdefault((located.unit.message, located.unit.part), []).append(span)
    messages = list(request.messages)
    for (index, part), unit_spans in spans.items():
        message = messages[index]
        if part == "content":
            messages[index] = message.model_copy(
                update={"content": redactor.redact_text(message.text(), unit_spans)}
            )
        elif part.startswith("part:"):
            k = int(part[5:])
            parts: list[ContentPart] = list(message.content) if isinstance(message.content, list) else []
            parts[k] = parts[k].model_copy(
                update={"text": redactor.redact_text(parts[k].text or "", unit_spans)}
            )
            messages[index] = message.model_copy(update={"content": parts})
        else:
            j = int(part[5:])
            calls = list(message.tool_calls or [])
            function = calls[j].function
            assert function is not None  # args units are made for function calls only
            new_args = redactor.redact_text(function.arguments, unit_spans)
            calls[j] = calls[j].model_copy(
                update={"function": function.model_copy(update={"arguments": new_args})}
            )
            messages[index] = message.model_copy(update={"tool_calls": calls})
    redacted = request.model_copy(update={"messages": messages})
    if fields:
        redacted = _redact_fields(redacted, fields, redactor)
    return redacted, redactor


def _redact_fields(
    request: ChatRequest, fields: dict[Unit, list[tuple[int, int, str]]], redactor: Redactor
) -> ChatRequest:
    """Rewrite the strings at the field units' paths (values in place, keys renamed) in the
    request's JSON form and read it back. Keys go last, deepest first, so that no path is renamed
    before the strings beneath it are rewritten."""
    data = request.model_dump(exclude_unset=True)
    for unit in sorted(fields, key=lambda u: (u.key, -len(u.path))):
        parent: Any = data
        for step in unit.path[:-1]:
            parent = parent[step]
        last = unit.path[-1]
        masked = redactor.redact_text(unit.text, fields[unit])
        if unit.key:
            parent[masked] = parent.pop(last)
        else:
            parent[last] = masked
    return ChatRequest.model_validate(data)


def restore_completion(body: bytes, redactor: Redactor) -> bytes:
    payload = orjson.loads(body)
    for choice in payload.get("choices") or []:
        message = choice.get("message") or {}
        if isinstance(message.get("content"), str):
            message["content"] = redactor.restore(message["content"])
        for called, key in _called(message):
            called[key] = redactor.restore(called.get(key) or "")
    return orjson.dumps(payload)


def _called(message: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """Where a message (or a stream's delta) writes what the model passes to a tool: each tool
    call's function arguments or custom-tool input, a legacy function call's arguments."""
    found = []
    for call in message.get("tool_calls") or []:
        if isinstance((function := call.get("function")), dict):
            found.append((function, "arguments"))
        elif isinstance((custom := call.get("custom")), dict):
            found.append((custom, "input"))
    if isinstance((legacy := message.get("function_call")), dict):
        found.append((legacy, "arguments"))
    return found


class _Buffers:
    """Per output field (content, each tool call's arguments), text held back until it cannot be
    the start of a placeholder split across chunks."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.pending: dict[str, str] = {}

    def feed(self, key: str, text: str, final: bool) -> str:
        text = self.pending.pop(key, "") + text
        cut = len(text)
        if not final:
            opening = text.rfind("[")
            if opening >= 0 and "]" not in text[opening:] and len(text) - opening <= HOLD_BACK:
                cut = opening
        self.pending[key] = text[cut:]
        return self.redactor.restore(text[:cut])


class RestoringStream(WrappedStream):
    """Wraps a backend stream: restores placeholders in content and tool-call argument deltas
    (function arguments, custom-tool input, a legacy function call's arguments)."""

    def __init__(self, inner: ChunkStream, redactor: Redactor) -> None:
        super().__init__(inner)
        self._buffers = _Buffers(redactor)

    async def __anext__(self) -> bytes:
        block = await self._inner.__anext__()
        out = []
        for event in block.split(b"\n\n"):
            if not event.startswith(b"data: {"):
                if event:
                    out.append(event + b"\n\n")
                continue
            chunk = orjson.loads(event[6:])
            self._restore_chunk(chunk)
            out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
        return b"".join(out)

    def _restore_chunk(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or []:
            final = choice.get("finish_reason") is not None
            delta = choice.get("delta") or {}
            index = choice.get("index", 0)
            if isinstance(delta.get("content"), str) or final:
                restored = self._buffers.feed(f"{index}:content", delta.get("content") or "", final)
                if restored or isinstance(delta.get("content"), str):
                    delta["content"] = restored
                    choice["delta"] = delta
            places = [
                (call.get(kind), field, f"{index}:tool:{call.get('index', 0)}")
                for call in delta.get("tool_calls") or []
                for kind, field in (("function", "arguments"), ("custom", "input"))
            ]
            places.append((delta.get("function_call"), "arguments", f"{index}:function_call"))
            for called, field, key in places:
                if isinstance(called, dict) and isinstance(called.get(field), str):
                    called[field] = self._buffers.feed(key, called[field], final)
