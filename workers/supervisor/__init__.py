"""The supervisor: worker processes per queue, restarts, scaling targets, autoscale, shared state."""

from workers.supervisor.supervisor import Supervisor

__all__ = ["Supervisor"]
