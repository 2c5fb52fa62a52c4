"""gunicorn's configuration for the app: `gunicorn -c python:agentstats.gunicorn_conf
agentstats.wsgi` (the Dockerfile, docker-compose and the benchmarks serve it so).

Threaded workers (gthread): a request waiting on the broker (up to the connect plus the
snapshot read timeout when the management API hangs) holds one thread, not a whole
process, so the agents' database-only calls (heartbeat, dispatch, envelope, identity
list) are answered by the other threads meanwhile. With 2 sync workers, two stats
requests on a hung broker held every process and a heartbeat waited 14.6 s.

Threads are started as requests need them, and each keeps its own database connection
for DATABASE_CONN_MAX_AGE seconds, so a process holds at most GUNICORN_THREADS
connections (the peak concurrency it has seen): size PostgreSQL's max_connections for
replicas x GUNICORN_WORKERS x GUNICORN_THREADS.

This is the server's configuration, not Django's: it is read by the gunicorn master
before the app is loaded, which is why it reads its own variables here.
"""

import os

# A worker's threads share its memory (one copy of the app and of the shared answer) and
# take turns on the GIL; requests blocked on I/O cost a thread each and no CPU.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# More than the pollers one process is likely to hold at once while the broker hangs,
# so a database-only call finds a free thread.
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# gthread's timeout watches the worker's main loop, not a request: a request hung on the
# broker never gets its process killed (the broker client's own timeouts bound it).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Pollers reuse their connection; an idle one waits in the worker's poller, not a thread.
keepalive = 5
