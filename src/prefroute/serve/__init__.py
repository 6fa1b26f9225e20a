"""The OpenAI-compatible routing server (``prefroute serve``); needs the ``serve`` extra.

``app.create_app(settings)`` builds it; the modules, one concept each: ``config``
(settings), ``schema`` (what is read of a request), ``routing`` (model names and
routing text), ``upstream`` (calls, retries, fallback), ``stream`` (SSE relay),
``limits`` and ``metrics``. The fake upstream for tests, benchmarks and demos is
``prefroute.testing``.
"""
