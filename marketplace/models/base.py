"""The base of every domain row: a public uuid and creation/modification times."""

import uuid

from django.db import models


class TimestampedModel(models.Model):
    """A row with a public uuid and creation/modification times."""

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    modified = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
