"""The OpenAI-compatible routing server (``prefroute serve``); needs the ``serve`` extra.

``app.create_app(settings)`` builds it; the modules, one concept each: ``config``
(settings), ``schema`` (what is read of a request), ``routing`` (model names and
routing text), ``upstream`` (calls, timeouts, retries, fallback), ``breaker``
(a circuit per upstream), ``stream`` (the client's disconnects, the SSE relay),
``limits`` (admission, per-upstream slots), ``protocol`` (uvicorn's HTTP with a
deadline for request heads) and ``metrics``. The fake upstreams for tests,
benchmarks and demos are in ``prefroute.testing``.
"""
