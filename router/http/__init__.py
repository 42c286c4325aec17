"""The HTTP edge: the ASGI app and its endpoints, the connection's bounds, the error tree and its
OpenAI-shaped JSON. It parses, authenticates and writes bytes; what happens to a request is in
router.pipeline."""
