#!/usr/bin/env bash
# `make run`: migrate the embedded database, seed the demo fleet and serve on 127.0.0.1:8000.
# The server runs in the background so that, once it answers (bounded wait) and a broker
# does, the connection observer (which runs the background jobs too) and a small simulated
# fleet start beside it; without a broker the background jobs run alone (run_jobs).
# Ctrl-C stops them all.
#   BIN=.venv/bin scripts/run.sh
set -u
cd "$(dirname "$0")/.."
PYTHON=${BIN:-.venv/bin}/python
ADDRESS=127.0.0.1:8000
export DEBUG=true

scripts/services.sh rabbitmq || true
"$PYTHON" manage.py migrate --noinput || exit
"$PYTHON" manage.py seed_demo || exit
scripts/services.sh check-rabbitmq || printf '%s\n' \
    "No RabbitMQ answers at ${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:15672}." \
    "Start one: sudo rabbitmq-plugins enable rabbitmq_management rabbitmq_stomp rabbitmq_web_stomp && sudo rabbitmq-server -detached" \
    "   or with Docker: docker compose up -d rabbitmq" \
    "Until then, broker-backed calls answer 503 broker_unavailable."

server=
fleet=
observer=
jobs=
# Background processes of a script ignore SIGINT: Ctrl-C reaches them through this trap.
# (Each is started as a simple command, so $! is the process itself, not a subshell.)
# shellcheck disable=SC2086 # the unset ones expand to nothing
trap 'kill $fleet $observer $jobs $server 2>/dev/null; wait; exit 130' INT TERM

"$PYTHON" manage.py runserver "$ADDRESS" &
server=$!
is_up=false
for _ in $(seq 30); do
    if curl -s -o /dev/null -m 2 "http://$ADDRESS/admin/login/"; then
        is_up=true
        break
    fi
    kill -0 "$server" 2>/dev/null || break
    sleep 1
done

if ! $is_up; then
    echo "Simulated fleet skipped: the server did not answer on $ADDRESS."
elif scripts/services.sh check-rabbitmq; then
    echo "Connection observer: watching RabbitMQ's event exchange; background jobs beside it."
    "$PYTHON" manage.py observe_connections &
    observer=$!
    echo "Simulated fleet: 5 agents of user demo-sim, 1 flapping; a status line every 30 s."
    "$PYTHON" manage.py simulate_fleet --agents 5 --owner demo-sim --flap-share 0.2 \
        --status-seconds 30 &
    fleet=$!
else
    echo "Simulated fleet skipped: no RabbitMQ answers. Background jobs: running alone."
    "$PYTHON" manage.py run_jobs &
    jobs=$!
fi

wait "$server"
status=$?
[ -z "$fleet" ] || { kill "$fleet" 2>/dev/null; wait "$fleet"; }
[ -z "$observer" ] || { kill "$observer" 2>/dev/null; wait "$observer"; }
[ -z "$jobs" ] || { kill "$jobs" 2>/dev/null; wait "$jobs"; }
exit $status
