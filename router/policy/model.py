"""Routing policy: YAML under policies/ validated into typed models.

Unknown keys, bad types and dangling references are a `PolicyError` naming the file, the line and
the key. This module reads files and builds models; it must never open a network connection or
hold secrets (a policy names the *variable* that holds a key, never the key).
"""

from __future__ import annotations

import hashlib
import math
import re
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.http.errors import PolicyError
from router.policy.yamldoc import Loc, YamlSyntaxError, compose, reason, where
from router.signals.sensitivity.findings import FINDING_TYPES


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Capability(StrEnum):
    chat = "chat"
    tools = "tools"
    json = "json"
    vision = "vision"
    code = "code"
    math = "math"
    reasoning = "reasoning"
    writing = "writing"
    long_context = "long_context"


class Price(_Model):
    input_per_mtok: Annotated[float, Field(ge=0)] = 0.0
    output_per_mtok: Annotated[float, Field(ge=0)] = 0.0

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input_per_mtok + completion_tokens * self.output_per_mtok) / 1e6


class Timeouts(_Model):
    connect_s: Annotated[float, Field(gt=0)] = 5.0
    first_byte_s: Annotated[float, Field(gt=0)] = 60.0
    total_s: Annotated[float, Field(gt=0)] = 600.0


class Retries(_Model):
    attempts: Annotated[int, Field(ge=0, le=10)] = 2
    backoff_s: Annotated[float, Field(ge=0)] = 0.25
    max_backoff_s: Annotated[float, Field(ge=0)] = 8.0
    max_retry_after_s: Annotated[float, Field(ge=0)] = 20.0


class Circuit(_Model):
    failures: Annotated[int, Field(ge=1)] = 5
    cooldown_s: Annotated[float, Field(gt=0)] = 30.0


class LatencyPrior(_Model):
    ttft_ms: Annotated[float, Field(ge=0)] = 500.0
    ms_per_token: Annotated[float, Field(ge=0)] = 20.0


class GpuCost(_Model):
    """A self-hosted backend's cost: what its GPUs cost per hour and what they serve per hour."""

    cost_per_hour: Annotated[float, Field(ge=0)]
    output_tokens_per_hour: Annotated[float, Field(gt=0)]
    input_tokens_per_hour: Annotated[float, Field(gt=0)] | None = None  # default: 10x the output rate
    replaces: str | None = None  # the backend it stands in for, in `turnout report costs`' break-even

    @property
    def input_rate(self) -> float:
        """Input tokens served per hour: as measured, else 10x the output rate."""
        return self.input_tokens_per_hour or self.output_tokens_per_hour * 10

    def price(self) -> Price:
        return Price(
            input_per_mtok=self.cost_per_hour / self.input_rate * 1e6,
            output_per_mtok=self.cost_per_hour / self.output_tokens_per_hour * 1e6,
        )


class BackendSpec(_Model):
    provider: Annotated[str, Field(min_length=1)]
    model: Annotated[str, Field(min_length=1)]
    base_url: str | None = None
    api_key_env: str | None = None
    data: Literal["external", "private"]
    price: Price | None = None
    gpu: GpuCost | None = None
    context_window: Annotated[int, Field(ge=1)] = 8192
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    capabilities: list[Capability] = []
    latency: LatencyPrior = LatencyPrior()
    timeouts: Timeouts | None = None
    retries: Retries | None = None
    circuit: Circuit | None = None
    fallbacks: list[str] = []
    # request fields beyond OpenAI's that this backend takes (a server's own, sent with extra_body)
    extra_params: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]] = []
    drop_params: list[str] = []  # request fields never sent to this backend (dropped, logged at debug)

    @model_validator(mode="after")
    def _one_cost(self) -> BackendSpec:
        if self.price is not None and self.gpu is not None:
            raise ValueError("give either price or gpu, not both")
        return self

    @property
    def unit_price(self) -> Price:
        """Per-token prices, derived from the GPU's cost for a self-hosted backend."""
        if self.gpu is not None:
            return self.gpu.price()
        return self.price or Price()


class EmbeddingSpec(_Model):
    """An embeddings model of a provider, served at POST /v1/embeddings under its policy name."""

    provider: Literal["openai", "vllm", "openai_compatible"]  # an OpenAI-wire /embeddings endpoint
    model: Annotated[str, Field(min_length=1)]
    base_url: str | None = None
    api_key_env: str | None = None
    data: Literal["external", "private"]
    price: Price | None = None  # input_per_mtok is charged
    timeouts: Timeouts | None = None


class Category(StrEnum):
    code = "code"
    math = "math"
    reasoning = "reasoning"
    writing = "writing"
    extraction = "extraction"
    simple_chat = "simple_chat"
    other = "other"


def _known_finding_type(value: str) -> str:
    if value not in FINDING_TYPES:
        raise ValueError(f"unknown finding type '{value}'; known: {', '.join(FINDING_TYPES)}")
    return value


FindingType = Annotated[str, AfterValidator(_known_finding_type)]


class Range(_Model):
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None

    def holds(self, value: float) -> bool:
        return (
            (self.gt is None or value > self.gt)
            and (self.gte is None or value >= self.gte)
            and (self.lt is None or value < self.lt)
            and (self.lte is None or value <= self.lte)
        )

    def describe(self) -> str:
        bounds = ((">", self.gt), (">=", self.gte), ("<", self.lt), ("<=", self.lte))
        return " and ".join(f"{op} {bound:g}" for op, bound in bounds if bound is not None)

    @model_validator(mode="after")
    def _some_value_holds(self) -> Range:
        """{gt: 0.5, lt: 0.2} holds for no value: a route that could never match."""
        if not self.within(-math.inf, math.inf):
            raise ValueError(f"no value is {self.describe()}")
        return self

    def within(self, low: float, high: float) -> bool:
        """Whether some value in [low, high] holds."""
        lows = [
            (bound, strict) for bound, strict in ((self.gt, True), (self.gte, False)) if bound is not None
        ]
        highs = [
            (bound, strict) for bound, strict in ((self.lt, True), (self.lte, False)) if bound is not None
        ]
        start, open_start = max([(low, False), *lows], key=lambda b: (b[0], b[1]))
        end, open_end = min([(high, False), *highs], key=lambda b: (b[0], not b[1]))
        return start < end or (start == end and not open_start and not open_end)


class Condition(_Model):
    """Conditions on the request's signals; every key given must hold (AND), `any` holds if one does."""

    sensitive: bool | None = None
    finding_types: list[FindingType] | None = None
    category: list[Category] | None = None
    difficulty: Range | None = None
    frontier: Range | None = None
    prompt_tokens: Range | None = None
    latency_budget_ms: Range | None = None
    has_tools: bool | None = None
    has_images: bool | None = None
    any: list[Condition] | None = None

    @model_validator(mode="after")
    def _scores_can_hold(self) -> Condition:
        """difficulty and frontier are probabilities: {gte: 5} (a 0-10 scale) could never hold."""
        for name in ("difficulty", "frontier"):
            bounds: Range | None = getattr(self, name)
            if bounds is not None and not bounds.within(0.0, 1.0):
                raise ValueError(f"{name} is between 0 and 1, so {name} {bounds.describe()} never holds")
        return self


class Order(StrEnum):
    listed = "listed"  # in the order the route lists them
    cheapest = "cheapest"  # by estimated cost of this request, among backends whose capabilities fit
    fastest = "fastest"  # by expected latency (live moving averages, starting from the priors)


class SearchMode(StrEnum):
    hybrid = "hybrid"  # dense + BM25, their scores fused by a weighted sum (README "Retrieval")
    dense = "dense"
    keyword = "keyword"


def _collection_name(name: str) -> str:
    """A name both vector stores take (rag.stores.name_problem), checked when the policy is read
    rather than at the first request that retrieves."""
    from rag.stores import name_problem

    problem = name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return name


CollectionName = Annotated[str, AfterValidator(_collection_name)]


class RouteRetrieval(_Model):
    """Retrieval for one route; unset fields take the policy's `retrieval` defaults."""

    collection: CollectionName | None = None
    top_k: Annotated[int, Field(ge=1, le=50)] | None = None
    budget_tokens: Annotated[int, Field(ge=50)] | None = None


class Route(_Model):
    name: Annotated[str, Field(min_length=1)]
    description: str | None = None
    when: Condition | None = None  # none: matches every request (a catch-all)
    backends: Annotated[list[str], Field(min_length=1)]
    order: Order = Order.listed
    retrieval: bool | RouteRetrieval = False  # ground answers in a collection (true: the defaults)


class SensitiveAction(StrEnum):
    reroute = "reroute"  # only private backends may receive the request
    redact = "redact"  # findings are replaced by typed placeholders, restored in the answer
    block = "block"  # the request is refused


class Sensitivity(_Model):
    action: SensitiveAction = SensitiveAction.reroute
    types: list[FindingType] | None = None  # None: every detector
    min_confidence: Annotated[float, Field(ge=0, le=1)] = 0.5
    terms: list[str] = []
    patterns: list[str] = []
    directives: bool = True  # a request that asks to stay inside ("process this locally") is rerouted
    # also a random value that words name as a key, token or secret ("my api key is ..."): off by
    # default, since it flags more look-alikes (README, "Secrets a label names")
    labelled_secrets: bool = False


class CollectionSpec(_Model):
    private: bool = False  # passages reach private backends only; a request that retrieved them is sensitive


class Retrieval(_Model):
    collection: CollectionName = "docs"
    top_k: Annotated[int, Field(ge=1, le=50)] = 5
    budget_tokens: Annotated[int, Field(ge=50)] = 1500  # context block size, in the gateway's token count
    mode: SearchMode = SearchMode.hybrid
    collections: dict[CollectionName, CollectionSpec] = {}

    def is_private(self, collection: str) -> bool:
        spec = self.collections.get(collection)
        return spec is not None and spec.private


class Defaults(_Model):
    route: str
    latency_budget_ms: Annotated[float, Field(gt=0)] = 60000.0
    expected_output_tokens: Annotated[int, Field(ge=1)] | None = None  # None: a prior per category
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    circuit: Circuit = Circuit()


class Policy(_Model):
    version: Literal[1] = 1
    description: str | None = None
    defaults: Defaults
    sensitivity: Sensitivity = Sensitivity()
    retrieval: Retrieval = Retrieval()
    backends: Annotated[dict[str, BackendSpec], Field(min_length=1)]
    routes: Annotated[list[Route], Field(min_length=1)]
    embeddings: dict[str, EmbeddingSpec] = {}  # providers' embeddings models, by the name callers use

    def route(self, name: str) -> Route:
        return next(route for route in self.routes if route.name == name)

    def timeouts(self, backend: str) -> Timeouts:
        return self.backends[backend].timeouts or self.defaults.timeouts

    def retries(self, backend: str) -> Retries:
        return self.backends[backend].retries or self.defaults.retries

    def circuit(self, backend: str) -> Circuit:
        return self.backends[backend].circuit or self.defaults.circuit

    @cached_property
    def declared_params(self) -> frozenset[str]:
        """Request fields beyond OpenAI's and vLLM's that some backend takes: a request may send them."""
        return frozenset(name for spec in self.backends.values() for name in spec.extra_params)


class LoadedPolicy(BaseModel):
    """A validated policy with where it came from; `version` is a digest of the file's bytes."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    policy: Policy
    path: Path
    version: str


def _dangling_backends(policy: Policy) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    known = set(policy.backends)
    for name, spec in policy.backends.items():
        for j, backend in enumerate(spec.fallbacks):
            if backend not in known:
                problems.append((("backends", name, "fallbacks", j), f"unknown fallback backend '{backend}'"))
        replaces = spec.gpu.replaces if spec.gpu is not None else None
        if replaces is not None and (replaces not in known or replaces == name):
            problems.append((("backends", name, "gpu", "replaces"), f"'{replaces}' is not another backend"))
    return problems + _unknown_providers(policy)


def _unknown_providers(policy: Policy) -> list[tuple[Loc, str]]:
    """A provider that is neither turnout's own adapter nor one litellm serves: a typo ("opneai")
    would otherwise pass, leave the backend ready and fail each request at litellm. litellm (~5 s
    to import) is read only when the policy names a provider turnout has no adapter of."""
    from router.backends import PROVIDERS

    others = {name: spec.provider for name, spec in policy.backends.items() if spec.provider not in PROVIDERS}
    if not others:
        return []
    from router.backends.litellm_backend import unknown_provider

    return [
        (("backends", name, "provider"), why)
        for name, provider in others.items()
        if (why := unknown_provider(provider)) is not None
    ]


def _dangling(policy: Policy) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    known = set(policy.backends)
    route_names: set[str] = set()
    for i, route in enumerate(policy.routes):
        if route.name in route_names:
            problems.append((("routes", i, "name"), f"route name '{route.name}' is used twice"))
        route_names.add(route.name)
        for j, backend in enumerate(route.backends):
            if backend not in known:
                problems.append(
                    (("routes", i, "backends", j), f"route '{route.name}' names unknown backend '{backend}'")
                )
    for name in policy.embeddings:
        if name in known or name == "auto":
            problems.append((("embeddings", name), f"embeddings model '{name}' has the name of a chat model"))
    problems += _dangling_backends(policy)
    catch_all = next((route.name for route in policy.routes if route.when is None), None)
    if catch_all is not None:
        first = [route.name for route in policy.routes].index(catch_all)
        for i, route in enumerate(policy.routes[first + 1 :], start=first + 1):
            problems.append(
                (
                    ("routes", i, "name"),
                    f"route '{route.name}' is unreachable after catch-all route '{catch_all}'",
                )
            )
    for j, pattern in enumerate(policy.sensitivity.patterns):
        try:
            re.compile(pattern)
        except re.error as error:
            problems.append((("sensitivity", "patterns", j), f"not a valid regular expression: {error}"))
    if policy.defaults.route not in route_names:
        problems.append((("defaults", "route"), f"default route '{policy.defaults.route}' is not a route"))
    return problems


def parse_policy(text: str, path: Path) -> Policy:
    """Validate policy YAML text; raise PolicyError listing every problem as `file:line: key: why`."""
    try:
        node, data = compose(text, path)
    except YamlSyntaxError as error:
        raise PolicyError(str(error)) from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}:1: a policy must be a YAML mapping with backends, routes and defaults")
    try:
        policy = Policy.model_validate(data)
    except ValidationError as error:
        lines = [where(path, node, tuple(e["loc"]), reason(e)) for e in error.errors(include_url=False)]
        raise PolicyError("\n".join(lines)) from None
    problems = _dangling(policy)
    if problems:
        raise PolicyError("\n".join(where(path, node, loc, why) for loc, why in problems))
    return policy


def load_policy(path: Path) -> LoadedPolicy:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise PolicyError(f"{path}: cannot read policy: {error.strerror}") from None
    policy = parse_policy(raw.decode("utf-8", errors="replace"), path)
    return LoadedPolicy(policy=policy, path=path, version=hashlib.sha256(raw).hexdigest()[:12])
