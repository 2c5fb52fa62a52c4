"""Local ports for servers a test starts, or for a service that must not answer."""

import socket


def free_port() -> int:
    """A local TCP port nothing listens on (the kernel's pick, released again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
