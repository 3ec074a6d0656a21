"""Fixtures of the hostile suite: the configuration tests' clean environment, shared."""

from tests.bus.conftest import no_bus_environment

__all__ = ["no_bus_environment"]
