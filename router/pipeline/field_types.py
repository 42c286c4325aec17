"""The types of the top-level fields that the Messages and Responses translators read, checked
before they translate: a number where a list belongs ("tools": 5) is a 400 naming the field, in the
endpoint's own words, as Anthropic's and OpenAI's APIs answer it, never a crash in the translation
nor a value quietly ignored ("text": {"format": "x"} turning structured output off).

Chat completions needs none of this: its request model (router.schema) types every field."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Check = tuple[Callable[[Any], bool], str]  # whether a value is of the type, and the type in words


def _of(*types: type) -> Callable[[Any], bool]:
    return lambda value: isinstance(value, types)


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _anthropic_metadata(value: Any) -> bool:
    return isinstance(value, dict) and (value.get("user_id") is None or isinstance(value["user_id"], str))


def _openai_metadata(value: Any) -> bool:
    """Up to 16 keys, each a string of at most 64 characters, each value one of at most 512."""
    return (
        isinstance(value, dict)
        and len(value) <= 16
        and all(isinstance(v, str) and len(k) <= 64 and len(v) <= 512 for k, v in value.items())
    )


def _text_options(value: Any) -> bool:
    """{"format": {"type": "text" | "json_object" | "json_schema", ...}}: a json_schema format names
    its schema and gives it (a typo such as "jsonschema" turned structured output off)."""
    if not isinstance(value, dict):
        return False
    fmt = value.get("format")
    if fmt is None:
        return True
    if not isinstance(fmt, dict) or fmt.get("type") not in ("text", "json_object", "json_schema"):
        return False
    return fmt["type"] != "json_schema" or (
        isinstance(fmt.get("name"), str) and isinstance(fmt.get("schema"), dict)
    )


def _instructions(value: Any) -> bool:
    """A string, or input items (a Response's own `instructions` echoed back): objects, never null."""
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(item, dict) for item in value)
    )


MESSAGES: Mapping[str, Check] = {
    "system": (_of(str, list), "a valid string or a list of text blocks"),
    "tools": (_of(list), "a valid list"),
    "tool_choice": (_of(dict), "a valid dictionary"),
    "stop_sequences": (_strings, "a valid list of strings"),
    "metadata": (_anthropic_metadata, "a valid dictionary with a string user_id"),
    "stream": (_of(bool), "a valid boolean"),
}
RESPONSES: Mapping[str, Check] = {
    "instructions": (_instructions, "a string or a list of input items"),
    "tools": (_of(list), "an array"),
    "tool_choice": (_of(str, dict), "a string or an object"),
    "text": (
        _text_options,
        "an object whose 'format' has a 'type' of text, json_object or json_schema (with 'name' and 'schema')",
    ),
    "metadata": (
        _openai_metadata,
        "an object of at most 16 string values (keys up to 64, values up to 512 characters)",
    ),
    "reasoning": (_of(dict), "an object"),
    "stream": (_of(bool), "a boolean"),
    "store": (_of(bool), "a boolean"),
    "parallel_tool_calls": (_of(bool), "a boolean"),
    "previous_response_id": (_of(str), "a string"),
    "user": (_of(str), "a string"),
}


def mistyped(body: Mapping[str, Any], checks: Mapping[str, Check]) -> tuple[str, str] | None:
    """The first field of `body` (null aside) that is not of its type, and the type in words."""
    for name, (holds, what) in checks.items():
        value = body.get(name)
        if value is not None and not holds(value):
            return name, what
    return None
