"""Test helpers for kernai and for backend authors.

- :class:`~kernai.testing.server.KernaiServer`: run a real ``kernai serve`` on a free port.
- :class:`~kernai.testing.conformance.BackendConformance`: subclass it in your test suite to check
  that a backend honours the plugin contract.
"""

from kernai.testing.conformance import BackendConformance
from kernai.testing.server import KernaiServer, free_port

__all__ = ["BackendConformance", "KernaiServer", "free_port"]
