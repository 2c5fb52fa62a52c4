"""Background jobs: each runs exactly once per period, whatever the number of scheduler
processes (replicas, restarts), by claiming its period with a database INSERT first.

`registry.JOBS` lists them; `engine` claims, runs and records one period; `scheduler`
fires them with APScheduler in a background process (`observe_connections`, `run_jobs`).
"""
