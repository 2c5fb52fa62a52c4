"""The connection report as a plain-text table, one line per agent, for terminals and cron.

Pure: a function of the report. Agent, offering and service names come from the agents,
so non-printable characters are replaced before they reach a terminal.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from marketplace.stats.merge import AgentStatus, ConnectionReport

COLUMNS = (
    "AGENT",
    "OFFERING",
    "CONNECTED",
    "CONNECTED SINCE",
    "SOURCE IP",
    "SERVICES",
    "QUEUED",
)
EMPTY = "-"
COLUMN_GAP = "  "


def render_fleet_table(report: ConnectionReport) -> str:
    """Format the agents as aligned columns followed by a one-line summary."""
    summary = report.summary
    totals = (
        f"{summary.total_agents} agents: {summary.connected_agents} connected, "
        f"{summary.disconnected_agents} disconnected; "
        f"{summary.total_queued_messages} queued messages"
    )
    if not report.agents:
        return f"No agents match.\n{totals}"
    lines = _align([COLUMNS, *(_table_row(agent) for agent in report.agents)])
    return "\n".join([*lines, totals])


def find_connected_since(agent: AgentStatus) -> datetime | None:
    """The opening time of the agent's oldest live connection, if it has one."""
    opened = [
        status.connected_at for status in agent.live_connections if status.connected_at is not None
    ]
    return min(opened, default=None)


def list_source_ips(agent: AgentStatus) -> tuple[str, ...]:
    """The distinct client addresses of the agent's live connections, in order of first use."""
    addresses = [status.source_ip for status in agent.live_connections]
    return tuple(dict.fromkeys(address for address in addresses if address))


def _table_row(agent: AgentStatus) -> tuple[str, ...]:
    since = find_connected_since(agent)
    # A queue on a down node has no known depth: it adds nothing.
    unique_queues = {(queue.vhost, queue.name): queue.messages or 0 for queue in agent.queues}
    return (
        agent.row.name,
        agent.row.offering_name,
        "yes" if agent.is_connected else "no",
        EMPTY if since is None else since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ", ".join(list_source_ips(agent)) or EMPTY,
        ", ".join(f"{service.name}:{service.state}" for service in agent.row.services) or EMPTY,
        str(sum(unique_queues.values())),
    )


def _align(rows: Sequence[Sequence[str]]) -> list[str]:
    cells = [[_printable(cell) for cell in row] for row in rows]
    widths = [max(len(row[index]) for row in cells) for index in range(len(COLUMNS))]
    return [
        COLUMN_GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _printable(value: str) -> str:
    return "".join(char if char.isprintable() else "?" for char in value)
