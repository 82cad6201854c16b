"""Thin entry points: the ``taskrail`` command and its subcommands, the demo and the benchmark."""

__all__: list[str] = []
