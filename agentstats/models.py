"""The user model: Django's user with a public uuid and a support flag."""

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person or an agent's service account; staff and support see the whole fleet."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    is_support = models.BooleanField(
        default=False, help_text="Support users read every agent and its connection stats."
    )

    class Meta:
        ordering = ["username"]

    def __str__(self) -> str:
        return self.username

    @property
    def full_name(self) -> str:
        return self.get_full_name()
