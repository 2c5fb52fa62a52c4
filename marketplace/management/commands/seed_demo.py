"""Seed a small demo fleet (idempotent) and print the support user's API token."""

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from rest_framework.authtoken.models import Token

from agentstats.models import User
from marketplace.models import Customer, Offering
from marketplace.names import AgentServiceState, ObservableObjectType
from marketplace.registration.services import (
    AgentIdentityFields,
    create_subscription_queue,
    register_agent_identity,
    register_agent_service,
    register_event_subscription,
)
from rmq.client import ManagementClient
from rmq.exceptions import BrokerError

# customer -> (owner username, offering -> agent names)
DEMO_FLEET: dict[str, tuple[str, dict[str, list[str]]]] = {
    "Acme HPC": ("acme-owner", {"Acme SLURM cluster": ["login-node-1", "login-node-2"]}),
    "Nordic Grid": (
        "nordic-owner",
        {"Nordic GPU partition": ["gpu-agent"], "Nordic storage": ["storage-agent"]},
    ),
}
SERVICE_STATES = {
    "order_process": AgentServiceState.ACTIVE,
    "membership_sync": AgentServiceState.IDLE,
    "report": AgentServiceState.ACTIVE,
}
OBJECT_TYPES = (ObservableObjectType.ORDER, ObservableObjectType.RESOURCE)


class Command(BaseCommand):
    help = "Create a support user, customers, offerings and a handful of agents (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        support, _ = User.objects.get_or_create(
            username="support", defaults={"is_support": True, "first_name": "Support"}
        )
        token, _ = Token.objects.get_or_create(user=support)
        broker = ManagementClient.from_settings()
        is_broker_up = True
        for customer_name, (owner_name, offerings) in DEMO_FLEET.items():
            owner, _ = User.objects.get_or_create(username=owner_name)
            Token.objects.get_or_create(user=owner)
            customer, _ = Customer.objects.get_or_create(name=customer_name)
            customer.owners.add(owner)
            for offering_name, agent_names in offerings.items():
                offering, _ = Offering.objects.get_or_create(name=offering_name, customer=customer)
                for agent_name in agent_names:
                    is_broker_up = (
                        self._seed_agent(offering, owner, agent_name, broker, is_broker_up)
                        and is_broker_up
                    )
        self.stdout.write(self.style.SUCCESS("Demo fleet ready."))
        if not is_broker_up:
            self.stdout.write(
                "RabbitMQ did not answer: agents and services are seeded, event "
                "subscriptions are not. Run seed_demo again once the broker is up."
            )
        self.stdout.write(f"Support user: support  API token: {token.key}")
        self.stdout.write(
            "Try: curl -H 'Authorization: Token "
            f"{token.key}' http://127.0.0.1:8000/api/marketplace-site-agent-identities/"
        )

    def _seed_agent(
        self, offering: Offering, owner: User, name: str, broker: ManagementClient, is_up: bool
    ) -> bool:
        fields = AgentIdentityFields(
            name=name,
            version="1.0.0",
            dependencies=[{"package": "waldur-api-client", "version": "8.1.3"}],
            config_file_path="/etc/waldur/site-agent.yaml",
            config_file_content="",
            last_restarted=None,
        )
        identity, _ = register_agent_identity(offering, actor=owner, fields=fields)
        for service_name, state in SERVICE_STATES.items():
            service, _ = register_agent_service(identity, name=service_name, mode=service_name)
            service.state = state
            service.save(update_fields=["state", "modified"])
        if not is_up:
            return False
        try:
            with transaction.atomic():
                for object_type in OBJECT_TYPES:
                    subscription, _ = register_event_subscription(
                        identity,
                        owner=owner,
                        object_type=object_type,
                        description="demo subscription",
                        source_ip="127.0.0.1",
                        broker=broker,
                    )
                    create_subscription_queue(
                        subscription, offering=offering, object_type=object_type, broker=broker
                    )
        except BrokerError:
            return False
        return True
