"""The gateway's services over their lifetime: started and stopped around the HTTP app
(router.http.app.create_app) or `turnout worker`, and the background work beside them (the batch
worker, the live gauges). Nothing here speaks HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from typing import Any

from router.accounts.admission import Admissions
from router.accounts.auth import KeyAuthenticator, KeyStore, Principal
from router.accounts.limits import FailMode, make_limiter
from router.accounts.usage import UsageRecorder
from router.backends.http import HttpClient
from router.http.services import Services
from router.pipeline.gateway import Gateway
from router.settings import Settings, make_offline
from router.tracing import Tracing

log = logging.getLogger("turnout.app")


async def startservices_of(settings: Settings, *, traced: bool = True) -> Services:
    from router.db import KEYS_CHANNEL, Listener, open_database, open_pool

    make_offline()
    http = HttpClient()
    gateway = Gateway(settings, http)
    if traced:  # HTTP requests are what is traced: `turnout worker` has none
        gateway.tracing = Tracing.from_env(prompts=settings.trace_prompts)
    database = await asyncio.to_thread(open_database, settings)
    pool = await open_pool(database.url)
    store = KeyStore(pool)
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    auth: Any = KeyAuthenticator(store, admin, settings.key_cache_seconds)
    listener = Listener(database.url, KEYS_CHANNEL, auth.invalidate)
    await listener.start()
    if admin is None and await store.count_active() == 0:
        key_id, key = await store.create("bootstrap")
        log.warning(
            "no API key existed, so one was created (%s); it is shown only now: %s (a caller's key: "
            "the admin endpoints take the key set as TURNOUT_ADMIN_KEY)",
            key_id,
            key,
        )
    if gateway.tracing.on:
        auth = TracedAuthenticator(auth, gateway.tracing)
    usage = UsageRecorder(pool, settings.usage_flush_seconds, settings.usage_batch_size)
    usage.start()
    limiter = make_limiter(
        settings.redis_url.get_secret_value() if settings.redis_url else None,
        on_failure=FailMode(settings.limits_on_failure),
        window_s=settings.limits_window_s,
        timeout_s=settings.limits_redis_timeout_s,
    )
    limiter.stats.bind(gateway.metrics)
    admissions = Admissions(limiter, pool)
    gateway.rag.database_url = database.url
    warming = asyncio.get_running_loop().create_task(gateway.rag.warm(gateway.runtime.loaded.policy))
    _background.add(warming)
    warming.add_done_callback(_background.discard)
    warming.add_done_callback(lambda _: freeze_heap())  # the embedder's objects too
    return Services(settings, gateway, auth, usage, gateway.metrics, pool, admissions, listener, database)


class TracedAuthenticator:
    """An authenticator whose every call is an `auth` span (only while tracing is on)."""

    def __init__(self, inner: KeyAuthenticator, tracing: Tracing) -> None:
        self.inner = inner
        self.tracing = tracing

    async def authenticate(self, headers: Any) -> Principal:
        with self.tracing.span("auth"):
            return await self.inner.authenticate(headers)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


_background: set[asyncio.Task[None]] = set()


def freeze_heap() -> None:
    """Put what start-up built (classifier, name gazetteer, policy, embedder) out of the cyclic
    collector's sight. Each full collection walked those ~66k objects for 34 ms here, a stall that
    every request in flight paid (p99 overhead reached 16 ms in long bench runs before)."""
    gc.collect()
    gc.freeze()


async def stopservices_of(services: Services) -> None:
    await services.gateway.rag.close()
    await services.admissions.aclose()
    if services.usage is not None:
        await services.usage.aclose()
    if services.listener is not None:
        await services.listener.aclose()
    await services.pool.close()
    if services.database is not None:
        await asyncio.to_thread(services.database.release)
    await services.gateway.http.aclose()
    await asyncio.to_thread(services.gateway.tracing.shutdown)


class RunningWorker:
    """A batch worker running in this process's event loop."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.task = asyncio.get_running_loop().create_task(worker.run())

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.worker.stop()


def start_batch_worker(
    services: Services, concurrency: int, *, yield_at: int | None = None
) -> RunningWorker | None:
    """Batch lines run in this process, `concurrency` at a time; with `yield_at`, none is claimed
    while that many interactive requests are in flight."""
    if concurrency <= 0:
        return None
    from router.http.batches import line_runner
    from router.pipeline.batches import BatchWorker

    metrics = services.metrics
    busy = (lambda: metrics.inflight >= yield_at) if yield_at is not None else (lambda: False)
    lease_s = services.settings.batch_lease_s
    return RunningWorker(
        BatchWorker(services.pool, line_runner(services), concurrency, busy=busy, lease_s=lease_s)
    )


def start_gauges(services: Services) -> asyncio.Task[None] | None:
    """The batch-queue and drift gauges, measured every `gauges_seconds` (router.ops.gauges)."""
    settings = services.settings
    if not settings.gauges_seconds:
        return None
    from datetime import timedelta

    from router.ops.gauges import LiveGauges

    gauges = LiveGauges(
        services.pool,
        services.metrics,
        settings.gauges_seconds,
        reference=timedelta(days=settings.drift_reference_days),
        current=timedelta(days=settings.drift_current_days),
    )
    return asyncio.get_running_loop().create_task(gauges.run(), name="gauges")


async def run_worker(
    settings: Settings, concurrency: int, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
) -> None:
    """`turnout worker`: the gateway's services and a batch worker, no HTTP but its /metrics when
    asked for (batch lines' requests, tokens and spend), until SIGINT or SIGTERM."""
    import signal

    services = await startservices_of(settings, traced=False)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, addr=metrics_host, registry=services.metrics.served())
    watcher = asyncio.get_running_loop().create_task(services.gateway.watch_policy())
    worker = start_batch_worker(services, concurrency)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        watcher.cancel()
        if worker is not None:
            await worker.aclose()
        await stopservices_of(services)
