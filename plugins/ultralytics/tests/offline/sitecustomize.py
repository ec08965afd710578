"""Imported at start-up by every Python process whose ``PYTHONPATH`` holds this folder: in those that
have ``KERNAI_TEST_NETWORK_LOG`` (the detection workers of these tests, through their model's
``environment``) it refuses any DNS lookup or network connection and records it.

The file named by ``KERNAI_TEST_NETWORK_LOG`` gets ``armed <pid>`` once per process, then one
``blocked ...`` line per attempt. Unix sockets (the worker's link to the server) stay allowed.
"""

import os
import socket
import sys

_LOG = os.environ.get("KERNAI_TEST_NETWORK_LOG", "")
_ADDRESSED = ("socket.connect", "socket.sendto", "socket.sendmsg")  # (socket, address)
_LOOKUPS = (
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
)  # (host, ...)


def _record(line: str) -> None:
    with open(_LOG, "a") as log:
        log.write(line + "\n")


def _guard(event: str, args: tuple) -> None:
    if event in _ADDRESSED:
        if args[0].family == socket.AF_UNIX:
            return
        target = args[1]
    elif event in _LOOKUPS:
        target = args[0]
    else:
        return
    _record(f"blocked {event} {target!r}")
    raise OSError(f"network access is blocked in this test ({event} {target!r})")


if _LOG:
    _record(f"armed {os.getpid()}")
    sys.addaudithook(_guard)
