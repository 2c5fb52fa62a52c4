"""agentstats: which site agents are alive, and if not, why."""
