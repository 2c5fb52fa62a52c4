"""The log lines agents ship (waldur-site-agent's log shipping): taken in batches, listed,
and pruned after AGENT_LOG_RETENTION_DAYS."""
