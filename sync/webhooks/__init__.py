"""Real time through signed webhooks (issue 22): the receiver, its durable queue in the store, and
the per-person fast path that turns a delivery into a new score on every platform within seconds.

``signatures`` and ``parse`` are pure; ``queue`` is the store I/O; ``receiver`` the aiohttp shell;
``fastpath`` the per-person pipeline over the same connectors, scoring and write-back code as a
scheduled sync.
"""
