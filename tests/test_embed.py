"""The query micro-batcher: concurrent embeddings become one forward pass, results go to the right
caller, a failure reaches every waiter; and the packaged MiniLM's single-query fast path equals its
batched pipeline."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from rag.embed import MicroBatcher, SentenceTransformerEmbedder, native_bf16
from rag.testing import HashEmbedder


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__(32, "hash-32")
        self.calls: list[int] = []
        self.lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self.lock:
            self.calls.append(len(texts))
        return super().embed(texts)


def test_concurrent_queries_share_forward_passes() -> None:
    embedder = CountingEmbedder()
    texts = [f"question number {i} about topic {i % 7}" for i in range(40)]

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(embedder, max_batch=16, max_wait_ms=5)
        return list(await asyncio.gather(*(batcher.embed_one(text) for text in texts)))

    vectors = asyncio.run(main())
    expected = HashEmbedder(32, "hash-32").embed(texts)
    assert np.allclose(np.stack(vectors), expected)
    assert sum(embedder.calls) == 40 and max(embedder.calls) <= 16 and len(embedder.calls) <= 4


def test_a_lone_query_waits_at_most_the_window() -> None:
    embedder = CountingEmbedder()

    async def main() -> float:
        batcher = MicroBatcher(embedder, max_batch=32, max_wait_ms=20)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await batcher.embed_one("alone")
        return loop.time() - started

    assert asyncio.run(main()) < 1.0 and embedder.calls == [1]


def test_queries_arriving_during_a_forward_pass_share_the_next_one() -> None:
    class Slow(CountingEmbedder):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            started.set()
            release.wait(10)
            return super().embed(texts)

    started, release = threading.Event(), threading.Event()
    embedder = Slow()

    async def main() -> list[np.ndarray]:
        batcher = MicroBatcher(embedder, max_batch=8)  # no waiting window: the first goes at once
        first = asyncio.ensure_future(batcher.embed_one("first"))
        while not started.is_set():  # the first pass is running before the others arrive
            await asyncio.sleep(0.001)
        rest = [asyncio.ensure_future(batcher.embed_one(f"later {i}")) for i in range(11)]
        await asyncio.sleep(0.01)
        release.set()
        return list(await asyncio.wait_for(asyncio.gather(first, *rest), 10))  # a hang fails

    vectors = asyncio.run(main())
    expected = HashEmbedder(32, "hash-32").embed(["first", *(f"later {i}" for i in range(11))])
    assert np.allclose(np.stack(vectors), expected)
    assert embedder.calls == [1, 8, 3]


def test_a_failed_batch_fails_every_waiter() -> None:
    class Broken(HashEmbedder):
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            raise RuntimeError("model crashed")

    async def main() -> list[object]:
        batcher = MicroBatcher(Broken(), max_batch=8, max_wait_ms=2)
        return list(
            await asyncio.gather(*(batcher.embed_one(f"q{i}") for i in range(5)), return_exceptions=True)
        )

    results = asyncio.run(main())
    assert len(results) == 5 and all(isinstance(r, RuntimeError) for r in results)


@pytest.mark.integration
@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_minilm_single_query_path_matches_the_batched_pipeline(precision: str) -> None:
    embedder = SentenceTransformerEmbedder(precision=precision)
    texts = ["How do I stream responses with tool use?", "word " * 400]
    for text in texts:
        single = embedder.embed([text])
        batched = embedder.embed([text, "padding partner of another length entirely"])[:1]
        assert single.shape == (1, 384) and abs(float(np.linalg.norm(single)) - 1.0) < 1e-5
        # bf16 products (what "auto" is on a CPU with native bf16) agree to about 1e-5 less than fp32's
        assert float(single[0] @ batched[0]) > 1 - (1e-3 if embedder.precision == "bf16" else 1e-5)
    assert embedder.precision == ("bf16" if precision == "auto" and native_bf16() else "fp32")
    assert embedder.count_tokens("unbelievable tokenization") > 2


@pytest.mark.integration
def test_bf16_gives_the_fp32_vectors_or_is_not_used() -> None:
    exact = SentenceTransformerEmbedder(precision="fp32")
    fast = SentenceTransformerEmbedder(precision="auto")
    texts = [
        "What does the x-turnout-overhead-ms header measure?",
        "Incremental ingest keeps a manifest per collection: file hashes, the embedder, the chunker. " * 8,
        "def retry(call, attempts=3):\n    for n in range(attempts):\n        try: return call()",
    ]
    singles = np.stack([fast.embed([text])[0] for text in texts])
    batched = fast.embed(texts)
    reference = exact.embed(texts)
    for vectors in (singles, batched):
        assert np.min(np.sum(vectors * reference, axis=1)) > 0.9999
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32"):
        SentenceTransformerEmbedder(precision="fp16")


@pytest.mark.integration
def test_openvino_batches_give_the_torch_vectors_in_order() -> None:
    torch_fp32 = SentenceTransformerEmbedder(precision="fp32", runtime="torch")
    openvino = SentenceTransformerEmbedder(precision="auto", runtime="auto")
    texts = [
        "short",
        "word " * 400,  # past the 256-piece window: truncated like the model's own pipeline
        "Chunks follow structure first, then a token bound that fits the embedder. " * 5,
        "¿Dónde está la documentación? 日本語のテキストも。",
        "short",
    ]
    vectors = openvino.embed(texts)
    assert openvino.runtime == "openvino"  # a dependency, so `auto` takes it on this CPU
    assert vectors.shape == (5, 384) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.min(np.sum(vectors * torch_fp32.embed(texts), axis=1)) > 0.9999
    assert float(vectors[0] @ vectors[4]) > 1 - 1e-6 and float(vectors[0] @ vectors[1]) < 0.9
    assert torch_fp32.runtime == "torch"
    encoder = openvino._batches
    assert encoder is not None
    encoder.dim = 3  # a pooling that cannot fit its rows fails the batch, never leaves zero vectors
    with pytest.raises(RuntimeError, match="OpenVINO batch failed"):
        openvino.embed(texts)
    with pytest.raises(ValueError, match="runtime must be one of auto, openvino, torch"):
        SentenceTransformerEmbedder(runtime="onnx")
