"""The `redact` rule: placeholders out, originals back in the answer, streamed or not."""

from __future__ import annotations

import asyncio

import orjson

from router.backends.base import Usage
from router.pipeline.redaction import Redactor, RestoringStream, redact_request, restore_completion
from router.schema import ChatRequest
from router.signals.collect import Located, Unit
from router.signals.sensitivity.detector import Finding


def test_request_is_redacted_consistently_and_restored():
    text = "Mail ann@example.com or ann@example.com, card 4111 1111 1111 1111"
    request = ChatRequest.model_validate({"model": "claude", "messages": [{"role": "user", "content": text}]})
    unit = Unit(0, "content", text)
    email_at = text.index("ann@")
    second = text.index("ann@", email_at + 1)
    card = text.index("4111")
    findings = [
        Located(unit, Finding("email", email_at, email_at + 15, 0.9)),
        Located(unit, Finding("email", second, second + 15, 0.9)),
        Located(unit, Finding("credit_card", card, card + 19, 0.9)),
    ]
    redacted, redactor = redact_request(request, findings)
    sent = redacted.messages[0].text()
    assert sent == "Mail [EMAIL_1] or [EMAIL_1], card [CREDIT_CARD_1]"
    assert request.messages[0].text() == text, "the caller's request is not modified"
    body = orjson.dumps(
        {"choices": [{"message": {"content": "I wrote to [EMAIL_1] about [CREDIT_CARD_1]."}}]}
    )
    restored = orjson.loads(restore_completion(body, redactor))
    assert (
        restored["choices"][0]["message"]["content"]
        == "I wrote to ann@example.com about 4111 1111 1111 1111."
    )


def test_a_placeholder_the_caller_wrote_is_never_one_of_turnouts():
    """A trial asked for "the literal text [EMAIL_2] and [EMAIL_1]": its own [EMAIL_1] came back
    as the address. Placeholders skip what the request already holds, and what it wrote stays."""
    text = "My mail is bob.smith@acme-corp.com. Reply with the literal text [EMAIL_2] and [EMAIL_1]"
    request = ChatRequest.model_validate({"model": "gpt-4", "messages": [{"role": "user", "content": text}]})
    at = text.index("bob.")
    unit = Unit(0, "content", text)
    redacted, redactor = redact_request(request, [Located(unit, Finding("email", at, at + 23, 0.9))])
    assert redacted.messages[0].text() == (
        "My mail is [EMAIL_3]. Reply with the literal text [EMAIL_2] and [EMAIL_1]"
    )
    body = orjson.dumps({"choices": [{"message": {"content": "[EMAIL_2] and [EMAIL_1], for [EMAIL_3]"}}]})
    restored = orjson.loads(restore_completion(body, redactor))["choices"][0]["message"]["content"]
    assert restored == "[EMAIL_2] and [EMAIL_1], for bob.smith@acme-corp.com"


def test_content_parts_and_tool_arguments_are_redacted():
    request = ChatRequest.model_validate(
        {
            "model": "claude",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "call 555-0100"}],
                },
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "t",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"to": "bob@x.io"}'},
                        }
                    ],
                },
            ],
        }
    )
    findings = [
        Located(Unit(0, "part:1", "call 555-0100"), Finding("phone", 5, 13, 0.9)),
        Located(Unit(1, "args:0", '{"to": "bob@x.io"}'), Finding("email", 8, 16, 0.9)),
    ]
    redacted, _ = redact_request(request, findings)
    assert redacted.messages[0].content[1].text == "call [PHONE_1]"
    assert redacted.messages[1].tool_calls[0].function.arguments == '{"to": "[EMAIL_1]"}'


class _Chunks:
    def __init__(self, blocks):
        self.blocks = list(blocks)
        self.usage = Usage()
        self.upstream_s = 0.0

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.blocks:
            raise StopAsyncIteration
        return self.blocks.pop(0)

    async def aclose(self):
        return None


def _chunk(content=None, finish=None):
    delta = {} if content is None else {"content": content}
    return (
        b"data: "
        + orjson.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        + b"\n\n"
    )


def test_stream_restores_placeholders_split_across_chunks():
    redactor = Redactor()
    token = redactor.placeholder("email", "ann@example.com")
    pieces = ["Write to ", token[:4], token[4:9], token[9:] + " today", "!"]
    blocks = [_chunk(piece) for piece in pieces] + [_chunk(finish="stop"), b"data: [DONE]\n\n"]

    async def collect():
        out = []
        async for block in RestoringStream(_Chunks(blocks), redactor):
            out.append(block)
        return out

    text = ""
    for block in asyncio.run(collect()):
        for event in block.split(b"\n\n"):
            if event.startswith(b"data: {"):
                text += orjson.loads(event[6:])["choices"][0]["delta"].get("content") or ""
    assert text == "Write to ann@example.com today!"


def test_unknown_placeholders_and_plain_brackets_are_left_alone():
    redactor = Redactor()
    redactor.placeholder("person", "Ann Lee")
    assert redactor.restore("[PERSON_1] and [PERSON_2] and [x]") == "Ann Lee and [PERSON_2] and [x]"


def _delta_chunk(delta):
    return (
        b"data: " + orjson.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}) + b"\n\n"
    )


def test_stream_restores_custom_tool_input_and_legacy_function_arguments():
    redactor = Redactor()
    token = redactor.placeholder("email", "ann@example.com")
    custom = [
        {"index": 0, "id": "call_1", "type": "custom", "custom": {"name": "mail", "input": "to " + token[:5]}}
    ]
    blocks = [
        _delta_chunk({"tool_calls": custom}),
        _delta_chunk({"tool_calls": [{"index": 0, "custom": {"input": token[5:] + " now"}}]}),
        _delta_chunk({"function_call": {"name": "mail", "arguments": '{"to": "' + token + '"}'}}),
        _chunk(finish="stop"),
        b"data: [DONE]\n\n",
    ]

    async def collect():
        return [block async for block in RestoringStream(_Chunks(blocks), redactor)]

    inputs, arguments = "", ""
    for block in asyncio.run(collect()):
        for event in block.split(b"\n\n"):
            if event.startswith(b"data: {"):
                delta = orjson.loads(event[6:])["choices"][0]["delta"]
                inputs += "".join(c["custom"]["input"] for c in delta.get("tool_calls") or [])
                arguments += (delta.get("function_call") or {}).get("arguments", "")
    assert inputs == "to ann@example.com now"
    assert arguments == '{"to": "ann@example.com"}'


def test_completion_restores_custom_tool_input_and_legacy_function_arguments():
    redactor = Redactor()
    token = redactor.placeholder("email", "ann@example.com")
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "mail", "input": token}}],
        "function_call": {"name": "mail", "arguments": token},
    }
    body = orjson.dumps({"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]})
    restored = orjson.loads(restore_completion(body, redactor))["choices"][0]["message"]
    assert restored["tool_calls"][0]["custom"]["input"] == "ann@example.com"
    assert restored["function_call"]["arguments"] == "ann@example.com"
