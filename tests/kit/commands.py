"""Management commands run as their argv would run them."""

from dataclasses import dataclass
from io import StringIO

from django.core.management import call_command
from django.core.management.base import CommandError


@dataclass(frozen=True)
class CommandResult:
    exit_code: int
    stdout: str
    stderr: str


def run_connection_stats(*argv: str) -> CommandResult:
    """Run the command as its argv would; a CommandError's code is the process exit code."""
    out, err = StringIO(), StringIO()
    try:
        call_command("connection_stats", *argv, stdout=out, stderr=err)
    except CommandError as exc:
        return CommandResult(exc.returncode, out.getvalue(), err.getvalue() + str(exc))
    return CommandResult(0, out.getvalue(), err.getvalue())
