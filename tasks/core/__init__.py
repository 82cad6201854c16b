"""The framework behind ``tasks``: decorator, client, wire format, canvas, results, server-side scripts.

The product's task modules (``tasks.emails``, ``tasks.reports``, ``tasks.fanout``) sit one level up;
everything they build on is here. The public names are re-exported by ``tasks``.
"""

__all__: list[str] = []
