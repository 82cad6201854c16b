"""Thin entry points: the ``taskrail`` command and its subcommands."""

__all__: list[str] = []
