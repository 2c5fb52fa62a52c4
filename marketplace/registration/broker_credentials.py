"""Whose API token may be a broker password, and how a row remembers which token it is.

A legacy subscription's and an event consumer's broker password is their owner's API
token. Only a current, active owner of the agent's customer may hold such a credential:
staff and support acting on a tenant's agent never put their own token into the broker.
A row stores a keyed digest of the token it was provisioned with (HMAC-SHA256 keyed by
SECRET_KEY), so the revocation sweep can tell a rotated token without reading a password.
"""

import hashlib
import hmac

from django.conf import settings
from rest_framework.authtoken.models import Token

from agentstats.errors import InvalidInput
from agentstats.models import User
from marketplace.access import is_customer_owner
from marketplace.models import AgentIdentity

# The digest of a row whose broker user was removed because its owner had no token left;
# re-registering provisions it again.
REVOKED_DIGEST = "revoked"


def digest_token_key(key: str) -> str:
    """The keyed digest a row stores for the API token that is its broker password."""
    return hmac.new(settings.SECRET_KEY.encode(), key.encode(), hashlib.sha256).hexdigest()


def is_entitled_to_broker_credential(user: User, identity: AgentIdentity | None) -> bool:
    """Whether the user's token may be the broker password of this agent's queues: it is
    active and owns the agent's customer now."""
    return identity is not None and user.is_active and is_customer_owner(user, identity.offering)


def require_broker_owner(user: User, identity: AgentIdentity) -> None:
    """Refuse (400) a caller whose API token may not become this agent's broker password."""
    if not is_entitled_to_broker_credential(user, identity):
        raise InvalidInput(
            "Only an owner of the agent's customer may register its event queues: the "
            "broker password is the registering user's API token. Register as the owner.",
            code="broker_owner_required",
        )


def issue_broker_password(user: User) -> tuple[str, str]:
    """The user's API token (created when it has none) and its digest, for provisioning."""
    key = Token.objects.get_or_create(user=user)[0].key
    return key, digest_token_key(key)
