"""The domain's closed sets of names, each spelled once: states, transports, statuses.

Pure (no Django): the status judgement and the stats merge use these enums as they are,
and `marketplace.models` derives its fields' `choices=` from them.
"""

from enum import StrEnum


class LabelledChoice(StrEnum):
    """A closed set of stored or reported values, each with a label for people."""

    @property
    def label(self) -> str:
        """The value in words: 'user_role' -> 'User role'."""
        return self.value.replace("_", " ").capitalize()

    @classmethod
    def values(cls) -> list[str]:
        """Every value, in declaration order (a serializer's `choices=`)."""
        return [member.value for member in cls]

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """(value, label) pairs, as a model field's `choices=` takes them."""
        return [(member.value, member.label) for member in cls]


class ObservableObjectType(LabelledChoice):
    """Kinds of marketplace objects whose events an agent subscribes to."""

    ORDER = "order"
    RESOURCE = "resource"
    USER_ROLE = "user_role"
    OFFERING_USER = "offering_user"
    IMPORTABLE_RESOURCES = "importable_resources"
    SERVICE_ACCOUNT = "service_account"
    COURSE_ACCOUNT = "course_account"
    RESOURCE_PERIODIC_LIMITS = "resource_periodic_limits"


class AgentServiceState(LabelledChoice):
    """A service's state as the agent registers it (the stats API shows it upper case)."""

    ACTIVE = "Active"
    IDLE = "Idle"
    ERROR = "Error"

    @property
    def reported(self) -> str:
        """The stats API's spelling: ACTIVE, IDLE, ERROR."""
        return report_service_state(self.value)

    @classmethod
    def parse(cls, value: str) -> "AgentServiceState | None":
        """The state a name means in any letter case ('error', 'ERROR'), or None."""
        return _SERVICE_STATES_BY_REPORTED.get(value.upper())


def report_service_state(stored: str) -> str:
    """A stored service state as the stats API reports it (upper case)."""
    return stored.upper()


_SERVICE_STATES_BY_REPORTED = {state.reported: state for state in AgentServiceState}
# The stats API's service states, in declaration order: ACTIVE, IDLE, ERROR.
REPORTED_SERVICE_STATES: tuple[str, ...] = tuple(_SERVICE_STATES_BY_REPORTED)


class AgentTransport(LabelledChoice):
    """How an agent gets its events."""

    WEB_STOMP = "ws"
    STOMP = "stomp"
    AMQP = "amqp"
    POLLING = "polling"

    @property
    def label(self) -> str:
        return _TRANSPORT_LABELS[self]

    @classmethod
    def of_protocol(cls, protocol: str | None) -> "AgentTransport | None":
        """The transport of a broker connection's protocol ('Web STOMP 1.2' -> ws)."""
        if not protocol:
            return None
        for prefix, transport in _TRANSPORT_PROTOCOL_PREFIXES:
            if protocol.startswith(prefix):
                return transport
        return None


_TRANSPORT_LABELS = {
    AgentTransport.WEB_STOMP: "STOMP over WebSocket",
    AgentTransport.STOMP: "STOMP",
    AgentTransport.AMQP: "AMQP",
    AgentTransport.POLLING: "Polling the API",
}
# Checked in order: "Web STOMP" before "STOMP".
_TRANSPORT_PROTOCOL_PREFIXES = (
    ("Web STOMP", AgentTransport.WEB_STOMP),
    ("STOMP", AgentTransport.STOMP),
    ("AMQP", AgentTransport.AMQP),
)


class DeploymentMode(LabelledChoice):
    """connected: consumes events over the broker; hosted: only polls the API."""

    CONNECTED = "connected"
    HOSTED = "hosted"


class ConnectionStatus(LabelledChoice):
    """An agent's judged connection status (the order is the totals' key order)."""

    UNKNOWN = "unknown"
    ONLINE = "online"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    OFFLINE = "offline"


class RoutingStatus(LabelledChoice):
    """Whether work may be routed to an agent (`busy` is never reported here)."""

    AVAILABLE = "available"
    BUSY = "busy"
    UNHEALTHY = "unhealthy"
    OFFLINE = "offline"
    UNKNOWN = "unknown"


class QueueKind(LabelledChoice):
    """consumer: an agent's unified queue; legacy: a per-subscription queue."""

    CONSUMER = "consumer"
    LEGACY = "legacy"
    UNKNOWN = "unknown"


class ConnectionEventKind(LabelledChoice):
    """What an entry of an agent's connection timeline records."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


# The agent_type every connection envelope reports: this service knows only one kind.
AGENT_TYPE = "waldur-site-agent"
