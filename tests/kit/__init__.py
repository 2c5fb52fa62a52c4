"""What test modules share; no test module imports another.

polling        wait_until(predicate, *, timeout, interval, message): the one poll loop
clock          FakeClock: a wall clock that moves only when told to (fixture `fake_clock`)
broker         the management API faked with `responses`: mock_broker_snapshot,
               mock_queue_listings, accept_provisioning, management_url, slow_answer; the
               items it lists (broker_connection_of, broker_queue_of); captured responses
fleet          Fleet: agents, services, subscriptions and queues in the database, and the
               broker's picture of them
real_broker    provision_agent, management_get, publish on the real RabbitMQ
site_agents    the real waldur-site-agent as a subprocess: AgentLauncher, wait_for, consumer_tags
services       require_service and the service markers a test gets from its fixtures
api, sdk, network, paths, commands
               API paths, the SDK lines, free ports, the repository root, running a command
envelope, status_facts, merge_values, permission_matrix, dashboard, metrics
               the worlds and helpers that one feature's split test modules share
"""
