#!/usr/bin/env bash
# A dedicated RabbitMQ node for tests that restart the broker, so no other user of the
# machine's broker is disturbed. Ports: AMQP 5682, management 15682, Web STOMP 15684.
#   scripts/test_broker_node.sh start|stop|stop_app|start_app
set -u
NODE=${AGENTSTATS_TEST_NODE:-agentstats-test@localhost}
DIR=${AGENTSTATS_TEST_NODE_DIR:-/tmp/agentstats-test-node}
MANAGEMENT=http://127.0.0.1:15682

management_up() { curl -fsS -m 2 -u guest:guest "$MANAGEMENT/api/overview" >/dev/null 2>&1; }

wait_until() {  # wait_until SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do [ "$SECONDS" -ge "$deadline" ] && return 1; sleep 0.5; done
}

management_down() { ! management_up; }

case "${1:-}" in
    start)
        management_up && exit 0
        rm -rf "$DIR" && mkdir -p "$DIR/mnesia" "$DIR/log"
        cat > "$DIR/rabbitmq.conf" <<CONF
listeners.tcp.local = 127.0.0.1:5682
management.tcp.port = 15682
management.tcp.ip = 127.0.0.1
web_stomp.tcp.port = 15684
web_stomp.tcp.ip = 127.0.0.1
stomp.listeners.tcp.1 = 127.0.0.1:61623
CONF
        echo "[rabbitmq_management,rabbitmq_stomp,rabbitmq_web_stomp]." > "$DIR/enabled_plugins"
        chown -R rabbitmq:rabbitmq "$DIR" 2>/dev/null || true
        RABBITMQ_NODENAME=$NODE RABBITMQ_NODE_PORT=5682 RABBITMQ_CONFIG_FILE=$DIR/rabbitmq \
            RABBITMQ_ENABLED_PLUGINS_FILE=$DIR/enabled_plugins RABBITMQ_MNESIA_BASE=$DIR/mnesia \
            RABBITMQ_LOG_BASE=$DIR/log RABBITMQ_PID_FILE=$DIR/pid rabbitmq-server -detached
        wait_until 90 management_up
        ;;
    stop)
        timeout 60 rabbitmqctl -q -n "$NODE" stop >/dev/null 2>&1
        rm -rf "$DIR"
        exit 0
        ;;
    stop_app)
        timeout 60 rabbitmqctl -q -n "$NODE" stop_app && wait_until 30 management_down
        ;;
    start_app)
        timeout 60 rabbitmqctl -q -n "$NODE" start_app && wait_until 60 management_up
        ;;
    *) echo "usage: $0 start|stop|stop_app|start_app" >&2; exit 2 ;;
esac
