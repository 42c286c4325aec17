"""One request's path behind the edge: plan (signals, routing decision, retrieval), call (attempts,
fallback, breaker) and relay (placeholders restored)."""
