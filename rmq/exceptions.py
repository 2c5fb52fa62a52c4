"""One exception family for every broker failure."""


class BrokerError(Exception):
    """The broker could not give a usable answer."""


class BrokerUnavailable(BrokerError):
    """The management API was refused, timed out, failed (5xx) or rejected our credentials."""


class BrokerResponseError(BrokerError):
    """The management API answered, but with an error or a body we cannot use."""
