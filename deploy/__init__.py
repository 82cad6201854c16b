"""Deployment files (Compose, Kubernetes) rendered from a scaling profile; the output lives beside it."""

__all__: list[str] = []
