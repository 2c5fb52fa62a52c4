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
    """Kinds of marketplace objects whose events an agent subscribes to: every value of
    `waldur-api-client` 8.1.3's ObservableObjectTypeEnum (8.1.2, which agent 1.0.7 runs
    with, lacks call, proposal, service_provider_account, service_provider_project_group)."""

    ORDER = "order"
    RESOURCE = "resource"
    USER_ROLE = "user_role"
    OFFERING_USER = "offering_user"
    IMPORTABLE_RESOURCES = "importable_resources"
    SERVICE_ACCOUNT = "service_account"
    COURSE_ACCOUNT = "course_account"
    RESOURCE_PERIODIC_LIMITS = "resource_periodic_limits"
    RESOURCE_API_KEY_ROTATION = "resource_api_key_rotation"
    OFFERING_RESOURCES_SYNC = "offering_resources_sync"
    RESOURCE_END_DATE_CHANGE_REQUEST = "resource_end_date_change_request"
    USER_PROFILE = "user_profile"
    USER_SSH_KEY = "user_ssh_key"
    USER_LIFECYCLE = "user_lifecycle"
    CALL = "call"
    PROPOSAL = "proposal"
    SERVICE_PROVIDER_ACCOUNT = "service_provider_account"
    SERVICE_PROVIDER_PROJECT_GROUP = "service_provider_project_group"


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


class EnvelopeTransport(LabelledChoice):
    """The envelope's `transport`, in Svantic's two values, one per deployment mode:
    `ws` for a connected agent (events reach it over a held connection), `callback` for a
    hosted one. The finer AgentTransport is reported beside it as `transport_detail`."""

    WS = "ws"
    CALLBACK = "callback"

    @classmethod
    def of_mode(cls, mode: DeploymentMode) -> "EnvelopeTransport":
        """The transport Svantic reports for a deployment mode."""
        return cls.WS if mode == DeploymentMode.CONNECTED else cls.CALLBACK


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


class AuthKind(LabelledChoice):
    """How the caller that registered an event consumer authenticated (upstream's set:
    this service issues API tokens and sessions; pat and oidc are never recorded here)."""

    TOKEN = "token"  # noqa: S105 (a kind of credential, not one)
    PAT = "pat"
    SESSION = "session"
    OIDC = "oidc"
    UNKNOWN = "unknown"


class AuthorizedVia(LabelledChoice):
    """Which right let the caller register an agent's event consumer."""

    STAFF = "staff"
    SUPPORT = "support"
    CUSTOMER_OWNER = "customer_owner"
    OFFERING_MANAGER = "offering_manager"
    IDENTITY_MANAGER = "identity_manager"
    SCOPE_ROLE = "scope_role"
    SELF = "self"


class DeliveryBlockedReason(LabelledChoice):
    """Why no event can reach an agent's event consumer, in the order they are checked:
    the first that applies is reported."""

    OWNER_DEACTIVATED = "owner_deactivated"
    QUEUE_NOT_PROVISIONED = "queue_not_provisioned"
    QUEUE_NODE_DOWN = "queue_node_down"
    BROKER_CREDENTIAL_MISSING = "broker_credential_missing"
    OWNER_HAS_NO_ROLE = "owner_has_no_role"
    NO_OBJECT_TYPES = "no_object_types"


class BrokerObjectKind(LabelledChoice):
    """What kind of broker object the broker reconcile found that no row explains."""

    QUEUE = "queue"
    USER = "user"
    VHOST = "vhost"


class LogLevel(LabelledChoice):
    """The level of a log line an agent ships (Python's logging names)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


# Levels whose latest line the envelope and the dashboard show: what went wrong last.
ALERTING_LOG_LEVELS: tuple[LogLevel, ...] = (LogLevel.ERROR, LogLevel.CRITICAL)
ALERTING_LOG_LEVEL_VALUES: list[str] = [level.value for level in ALERTING_LOG_LEVELS]


class JobOutcome(LabelledChoice):
    """How a background job's claimed run ended (`running` until it does, or forever if
    its process died mid-run: a claimed period is never run twice)."""

    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"
    SKIPPED_BROKER_UNAVAILABLE = "skipped_broker_unavailable"


# The agent_type every connection envelope reports: this service knows only one kind.
AGENT_TYPE = "waldur-site-agent"
