"""Request and response shapes of `register_queue`, as the 8.1 SDK's
AgentQueueRegistrationRequest / AgentQueueRegistrationResponse define them."""

from rest_framework import serializers

from marketplace.names import ObservableObjectType


class AgentQueueRegistrationInputSerializer(serializers.Serializer):
    object_types = serializers.ListField(
        child=serializers.ChoiceField(choices=ObservableObjectType.choices()),
        required=False,
        allow_empty=True,
        help_text="Object types whose events the agent wants; an empty list means every "
        "type, omitting the field keeps the current filter (every type for a new queue). "
        "Repeated values count once.",
    )

    def validate_object_types(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class AgentQueueRegistrationOutputSerializer(serializers.Serializer):
    rmq_username = serializers.CharField(
        help_text="RabbitMQ user to log in as (STOMP `login`); the password is the API "
        "token this registration was made with."
    )
    queue_name = serializers.CharField(
        help_text="The agent's durable queue; subscribe to /amq/queue/<queue_name>."
    )
    vhost = serializers.CharField(
        help_text="RabbitMQ virtual host of the queue (STOMP `host`): the owner's uuid hex."
    )
    observable_object_types = serializers.ListField(
        source="object_types",
        child=serializers.ChoiceField(choices=ObservableObjectType.choices()),
        help_text="The stored filter: the object types whose events the queue receives; "
        "empty means every type.",
    )
