"""An agent's unified event consumer (waldur-site-agent 1.0.7+): one queue for every event."""

import uuid

from django.conf import settings
from django.db import models

from marketplace.models.agents import AgentIdentity
from marketplace.models.base import TimestampedModel
from marketplace.names import AuthKind, AuthorizedVia
from rmq.naming import format_consumer_queue_name


def new_rmq_username() -> str:
    """A fresh broker username: random, so it reveals no row's uuid."""
    return uuid.uuid4().hex


class EventConsumer(TimestampedModel):
    """One agent's unified event queue, owned by the user who registered it.

    On the broker: the user `rmq_username` in the owner's vhost (the owner's uuid hex),
    with the registering caller's API token as password, may read only the durable queue
    `consumer_<uuid hex>`. `object_types` is the filter the agent asked for (empty: all);
    `auth_*` and `authorized_via` record how the registering caller got in.
    """

    identity = models.OneToOneField(
        AgentIdentity, on_delete=models.CASCADE, related_name="event_consumer"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="event_consumers"
    )
    rmq_username = models.CharField(max_length=32, unique=True, default=new_rmq_username)
    object_types = models.JSONField(default=list, blank=True)
    auth_kind = models.CharField(max_length=10, choices=AuthKind.choices(), blank=True, default="")
    auth_token_prefix = models.CharField(max_length=16, blank=True, default="")
    auth_token_name = models.CharField(max_length=255, blank=True, default="")
    authorized_via = models.CharField(
        max_length=20, choices=AuthorizedVia.choices(), blank=True, default=""
    )
    # Which API token is the broker password, as a keyed digest (never the token): see
    # marketplace/registration/broker_credentials.py.
    broker_credential_digest = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return self.queue_name

    @property
    def queue_name(self) -> str:
        return format_consumer_queue_name(self.uuid.hex)

    @property
    def vhost(self) -> str:
        return self.user.uuid.hex


class BrokerUserRemoval(TimestampedModel):
    """A broker user whose row is gone with its deleted owner, still to be removed.

    Written in the owner's deletion (so it exists exactly when the deletion committed);
    removed once the broker user (and, for an event consumer, its queue) is gone.
    """

    username = models.CharField(max_length=64, unique=True)
    vhost = models.CharField(max_length=64)
    consumer_hex = models.CharField(max_length=32, blank=True, default="")

    class Meta:
        ordering = ["created", "id"]

    def __str__(self) -> str:
        return self.username
