"""What the emulators answer: the words of a reply, the tool a model would call, the usage it
would count, and the request fields OpenAI's API knows. Pure functions of the request body, shared
by both wires (router.testing.emulators serves them).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson

WireProtocol = Literal["openai", "anthropic"]
Server = Literal["openai", "anthropic", "vllm"]  # vllm: the OpenAI wire, with vLLM's leniency
# The top-level fields of OpenAI's chat-completions request (its API reference, 2026-12); OpenAI
# refuses any other with a 400, and so does its emulator. vLLM's server ignores unknown fields.
OPENAI_REQUEST_FIELDS = frozenset(
    [
        "model",
        "messages",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "moderation",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    ]
)


def reply_words(body: dict[str, Any], model: str) -> list[str]:
    """A deterministic answer: who answers, then the last user text echoed, within max_tokens."""
    last = ""
    for message in reversed(body.get("messages") or []):
        if message.get("role") in ("user", "tool"):
            last = _text(message.get("content"))
            break
    words = ["This", "is", model, "answering:", *last.split()][:64]
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 64
    return words[: max(1, int(limit))]


def shaped(body: dict[str, Any], words: list[str], wire: WireProtocol) -> tuple[list[str], str, str | None]:
    """The reply's words as the request shapes them, why it ended as OpenAI names it ("stop" or
    "length"), and the stop sequence it met: a JSON response format gets one JSON value (an instance
    of the schema, so the SDKs' parse helpers work), a stop sequence cuts the text before it."""
    fmt = body.get("response_format") if wire == "openai" else None
    if isinstance(fmt, dict) and fmt.get("type") in ("json_schema", "json_object"):
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else None
        value = instance_of(schema, schema) if schema else {"answer": " ".join(words)}
        return [orjson.dumps(value).decode()], "stop", None
    stops = body.get("stop") if wire == "openai" else body.get("stop_sequences")
    text = " ".join(words)
    listed = [stops] if isinstance(stops, str) else stops if isinstance(stops, list) else []
    met = [(text.find(stop), stop) for stop in listed if isinstance(stop, str) and stop]
    met = [(at, stop) for at, stop in met if at >= 0]
    if met:
        at, stop = min(met)
        return text[:at].split(), "stop", stop
    limit = body.get("max_completion_tokens") or body.get("max_tokens") or 10**9
    return words, "length" if len(words) >= limit else "stop", None


def instance_of(schema: Any, root: Any, depth: int = 0) -> Any:
    """A value a JSON schema accepts: its first enum value or const, each property (nested
    definitions followed through $ref, eight deep: a tree's node ends in null), one item of an array."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "$ref" in schema:  # "#/$defs/Name", as pydantic writes nested models
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return instance_of(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for either in ("anyOf", "oneOf", "allOf"):
        if schema.get(either):
            return instance_of(schema[either][0], root, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    kind = next((k for k in kind if k != "null"), "null") if isinstance(kind, list) else kind
    if kind == "object":
        return {
            name: instance_of(prop, root, depth + 1)
            for name, prop in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        return (
            [instance_of(schema["items"], root, depth + 1)] if isinstance(schema.get("items"), dict) else []
        )
    return {"string": "emulated", "number": 1.5, "integer": 1, "boolean": True}.get(kind)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text") or part.get("content") or "") for part in content if isinstance(part, dict)
        )
    return ""


def prompt_tokens(body: dict[str, Any]) -> int:
    count = len(_text(body.get("system")).split()) if body.get("system") else 0
    return count + sum(len(_text(m.get("content")).split()) + 4 for m in body.get("messages") or [])


def arguments_for(schema: dict[str, Any] | None) -> dict[str, Any]:
    """Plausible arguments for a JSON schema: each property filled by its type."""
    samples = {"string": "emulated", "number": 1.5, "integer": 1, "boolean": True, "array": [], "object": {}}
    properties = (schema or {}).get("properties") or {}
    return {name: samples.get(prop.get("type", "string"), "emulated") for name, prop in properties.items()}


def chosen_tool(body: dict[str, Any], wire: WireProtocol) -> dict[str, Any] | None:
    """The tool to call, if the caller offered tools and the last turn is the caller's question:
    its name, input and kind (`function`, `custom`, or `function_call` for legacy functions)."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    messages = body.get("messages") or []
    if wire == "openai" and not tools and body.get("functions"):  # legacy function calling
        tools = [{"type": "function_call", "function_call": f} for f in body["functions"]]
        choice = body.get("function_call")
        choice = {"type": "function_call", "function_call": choice} if isinstance(choice, dict) else choice
    if not tools or not messages:
        return None
    last = messages[-1]
    if wire == "openai":
        if choice == "none" or last.get("role") != "user":
            return None
        if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
            allowed = [_openai_tool_name(t) for t in choice["allowed_tools"]["tools"]]
            tools = [t for t in tools if _openai_tool_name(t) in allowed] or tools
            choice = None
        named = _openai_tool_name(choice) if isinstance(choice, dict) else None
        tool = next((t for t in tools if _openai_tool_name(t) == named), tools[0])
        kind = tool.get("type", "function")
        defined = tool.get(kind) or {}
        if kind == "custom":
            return {"name": defined["name"], "input": "emulated input", "kind": kind}
        return {"name": defined["name"], "input": arguments_for(defined.get("parameters")), "kind": kind}
    content = last.get("content")
    if (isinstance(choice, dict) and choice.get("type") == "none") or (
        isinstance(content, list) and any(block.get("type") == "tool_result" for block in content)
    ):
        return None
    named = choice.get("name") if isinstance(choice, dict) else None
    tool = next((t for t in tools if t["name"] == named), tools[0])
    return {"name": tool["name"], "input": arguments_for(tool.get("input_schema")), "kind": "function"}


def _openai_tool_name(tool: dict[str, Any]) -> str | None:
    """The name in a tool, a named tool choice or an allowed tool ({"type": ..., <type>: {"name"}})."""
    defined = tool.get(tool.get("type", "function")) or {}
    return defined.get("name") if isinstance(defined, dict) else None


def embedding_of(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector for a text: the same text, the same vector."""
    import hashlib
    import math

    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 + i * 1e-3 for i in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]
