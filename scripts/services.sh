#!/usr/bin/env bash
# Start the local PostgreSQL, RabbitMQ (management, stomp, web_stomp, event exchange) and Redis
# when they are installed but not running. Every wait is bounded.
#   scripts/services.sh postgres|rabbitmq|redis|all   start what is missing; exit 1 if it stays down
#   scripts/services.sh check-rabbitmq          exit 0 when the management API answers
set -u

RABBITMQ_MANAGEMENT_URL=${RABBITMQ_MANAGEMENT_URL:-http://127.0.0.1:15672}
RABBITMQ_USER=${RABBITMQ_USER:-guest}
RABBITMQ_PASSWORD=${RABBITMQ_PASSWORD:-guest}
PLUGINS="rabbitmq_management rabbitmq_stomp rabbitmq_web_stomp rabbitmq_event_exchange"

say() { printf '[services] %s\n' "$*" >&2; }

wait_for() {  # wait_for SECONDS COMMAND...
    local limit=$1; shift
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 1
    done
}

postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432; }

start_postgres() {
    if postgres_up; then say "PostgreSQL is running"; return 0; fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        say "PostgreSQL is not installed (apt-get install postgresql) and none answers on 5432"
        return 1
    fi
    local version
    for version in $(ls /etc/postgresql 2>/dev/null); do
        say "starting PostgreSQL $version"
        timeout 60 pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    done
    if wait_for 30 postgres_up; then say "PostgreSQL is up"; return 0; fi
    say "PostgreSQL did not come up within 30 s"; return 1
}

management_up() {
    curl -fsS -m 3 -u "$RABBITMQ_USER:$RABBITMQ_PASSWORD" "$RABBITMQ_MANAGEMENT_URL/api/overview"
}

web_stomp_up() { (exec 3<>/dev/tcp/127.0.0.1/15674) 2>/dev/null; }

start_rabbitmq() {
    if ! command -v rabbitmq-server >/dev/null 2>&1; then
        if management_up; then say "RabbitMQ management API answers"; return 0; fi
        say "RabbitMQ is not installed (apt-get install rabbitmq-server) and none answers"
        return 1
    fi
    if timeout 20 rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
        # shellcheck disable=SC2086
        timeout 60 rabbitmq-plugins enable $PLUGINS >/dev/null || say "could not enable plugins"
    else
        # shellcheck disable=SC2086
        timeout 60 rabbitmq-plugins enable --offline $PLUGINS >/dev/null || true
        say "starting RabbitMQ"
        rabbitmq-server -detached || true
    fi
    if wait_for 90 management_up && wait_for 30 web_stomp_up; then
        say "RabbitMQ is up (management, stomp, web_stomp)"
        return 0
    fi
    say "RabbitMQ did not come up within the bound"
    return 1
}

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping | grep -q PONG; }

start_redis() {
    if redis_up; then say "Redis is running"; return 0; fi
    if ! command -v redis-server >/dev/null 2>&1; then
        say "Redis is not installed (apt-get install redis-server) and none answers on 6379"
        return 1
    fi
    say "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/agentstats.log || true
    if wait_for 20 redis_up; then say "Redis is up"; return 0; fi
    say "Redis did not come up within 20 s"; return 1
}

case "${1:-all}" in
    postgres) start_postgres ;;
    rabbitmq) start_rabbitmq ;;
    redis) start_redis ;;
    all) rc=0; start_postgres || rc=1; start_rabbitmq || rc=1; start_redis || rc=1; exit $rc ;;
    check-rabbitmq) management_up >/dev/null 2>&1 ;;
    *) echo "usage: $0 postgres|rabbitmq|redis|all|check-rabbitmq" >&2; exit 2 ;;
esac
