"""Which request fields each backend takes, and what happens to the others.

The gateway accepts every field of OpenAI's Chat Completions reference, vLLM's own fields and the
fields a policy's backends declare (router.schema). Here each backend gets the ones it can take:

- `openai`: OpenAI's fields.
- `vllm`: the OpenAI fields vLLM's server defines, and vLLM's own (top_k, min_p,
  repetition_penalty, structured_outputs, guided_json, chat_template_kwargs, ...).
- `openai_compatible`, and providers served through litellm: OpenAI's fields.
- every backend: plus its `extra_params`, less its `drop_params` (policy keys).

Anthropic backends translate (router.backends.anthropic_wire) and take what has a Messages
counterpart. A field a backend does not take is dropped and logged at debug, as LiteLLM's
`drop_params` does. Legacy `functions`/`function_call` go as they are where `functions` is taken,
and are rewritten as `tools`/`tool_choice` (with the conversation's function calls as tool calls)
where it is not; the answer then carries `tool_calls`.
"""

from __future__ import annotations

import logging
from typing import Any

from router.chat_types import VLLM_FIELDS
from router.policy.model import BackendSpec
from router.schema import ChatRequest

log = logging.getLogger("turnout.backends")

OPENAI_FIELDS = frozenset(ChatRequest.model_fields) - {"turnout"}
# OpenAI's fields that vLLM's chat-completions server defines (others it would ignore with a warning)
VLLM_OPENAI_FIELDS = frozenset(
    [
        "model",
        "messages",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "presence_penalty",
        "response_format",
        "seed",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "parallel_tool_calls",
        "user",
    ]
)


def accepted(spec: BackendSpec) -> frozenset[str]:
    """The request fields a backend of the OpenAI wire (or litellm) is sent."""
    base = VLLM_OPENAI_FIELDS | VLLM_FIELDS if spec.provider == "vllm" else OPENAI_FIELDS
    return (base | frozenset(spec.extra_params)) - frozenset(spec.drop_params) | {"model", "messages"}


def fit(body: dict[str, Any], takes: frozenset[str], backend: str) -> dict[str, Any]:
    """`body` with only the fields the backend takes (legacy functions rewritten as tools where
    it takes tools and not functions); what is dropped is logged at debug."""
    if "functions" in body and "functions" not in takes and "tools" in takes:
        body = legacy_as_tools(body)
    dropped = [name for name in body if name not in takes]
    if not dropped:
        return body
    log.debug("%s does not take %s: dropped", backend, ", ".join(dropped))
    return {name: value for name, value in body.items() if name in takes}


def legacy_as_tools(body: dict[str, Any]) -> dict[str, Any]:
    """Legacy function calling as tool calling: `functions` → `tools`, `function_call` →
    `tool_choice`, an assistant's `function_call` → one tool call (id `call_fn_<n>`), and the
    `function` message that answers it → a `tool` message with that id."""
    body = dict(body)
    functions = body.pop("functions", None) or []
    tools = list(body.get("tools") or [])
    tools += [{"type": "function", "function": function} for function in functions]
    body["tools"] = tools
    choice = body.pop("function_call", None)
    if choice is not None and "tool_choice" not in body:
        body["tool_choice"] = choice if isinstance(choice, str) else {"type": "function", "function": choice}
    messages: list[dict[str, Any]] = []
    pending: dict[Any, str] = {}  # pending: function name → the id of its unanswered call
    for number, message in enumerate(body.get("messages") or []):
        if message.get("role") == "assistant" and isinstance(message.get("function_call"), dict):
            message = dict(message)
            call = message.pop("function_call")
            call_id = f"call_fn_{number}"
            pending[call.get("name")] = call_id
            function = {"name": call.get("name", ""), "arguments": call.get("arguments", "")}
            message["tool_calls"] = [
                *(message.get("tool_calls") or []),
                {"id": call_id, "type": "function", "function": function},
            ]
        elif message.get("role") == "function":
            name = message.get("name")
            message = {k: v for k, v in message.items() if k != "name"}
            message.update(role="tool", tool_call_id=pending.pop(name, None) or f"call_fn_{name}")
        messages.append(message)
    body["messages"] = messages
    return body
