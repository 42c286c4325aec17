"""Deterministic doubles for rag: a hash embedder, so store and retrieval tests run without a model.

Never used for real retrieval: `make_embedder("hash")` exists so tests and quick demos can pick it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)


class HashEmbedder:
    """Deterministic bag-of-words vectors from hashed tokens: same text, same vector; shared words
    make vectors close. For unit tests of stores and retrieval, never for real retrieval."""

    def __init__(self, dim: int = 64, name: str = "hash-64") -> None:
        self.name = name
        self.dim = dim
        self.max_tokens = 254

    def count_tokens(self, text: str) -> int:
        """MiniLM's word pieces when its tokenizer is installed, so that chunks come out the same as
        with the real embedder; else words."""
        from rag.embed import wordpiece_tokenizer

        tokenizer = wordpiece_tokenizer()
        if tokenizer is None:
            return len(_WORD.findall(text))
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dim
                out[row, bucket] += 1.0 if digest[4] & 1 else -1.0
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out
