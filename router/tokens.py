"""Prompt size in tokens, counted once per request with tiktoken (about 15 us for a chat prompt here).

tiktoken's BPE file is read from TIKTOKEN_CACHE_DIR (router.settings.make_offline points it at
litellm's bundled copy); this module must never download one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson

from router.schema import ChatRequest

PER_MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI counts them


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import tiktoken

    return tiktoken.get_encoding("o200k_base")


def warm() -> None:
    """Load the BPE file now (~0.5 s here) so that the first request does not pay for it."""
    _encoding()


def _texts(request: ChatRequest) -> list[str]:
    texts = [message.text() for message in request.messages]
    for message in request.messages:
        for call in message.tool_calls or []:
            if call.function is not None:
                texts.append(call.function.name + call.function.arguments)
            elif call.custom is not None:
                texts.append(call.custom.name + call.custom.input)
    for defined in (request.tools, request.functions):
        if defined:
            texts.append(orjson.dumps([item.model_dump(exclude_none=True) for item in defined]).decode())
    return texts


def count(request: ChatRequest) -> int:
    encoding = _encoding()
    texts = _texts(request)
    return sum(
        len(encoding.encode(text, disallowed_special=())) for text in texts
    ) + PER_MESSAGE_OVERHEAD * len(request.messages)


def count_text(text: str) -> int:
    return len(_encoding().encode(text, disallowed_special=()))
