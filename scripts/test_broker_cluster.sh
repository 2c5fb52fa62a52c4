#!/usr/bin/env bash
# A private 3-node RabbitMQ cluster for the cluster tests, so the machine's broker
# (rabbit@vm) is never touched. Node N (1-3) is agentstats-cN@localhost with AMQP 570N,
# management 1570N, Web STOMP 1571N and STOMP 6170N (Erlang distribution 2570N), each with
# its own data under $DIR/cN; nodes 2 and 3 join node 1.
#   scripts/test_broker_cluster.sh start|stop|stop_node N|start_node N|status
set -u
DIR=${AGENTSTATS_TEST_CLUSTER_DIR:-/tmp/agentstats-test-cluster}
PLUGINS="[rabbitmq_management,rabbitmq_stomp,rabbitmq_web_stomp,rabbitmq_event_exchange]."

node_name() { echo "agentstats-c$1@localhost"; }
management_url() { echo "http://127.0.0.1:1570$1"; }

say() { printf '[cluster] %s\n' "$*" >&2; }

wait_until() {  # wait_until SECONDS COMMAND...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do [ "$SECONDS" -ge "$deadline" ] && return 1; sleep 1; done
}

management_up() { curl -fsS -m 3 -u guest:guest "$(management_url "$1")/api/overview" >/dev/null 2>&1; }
management_down() { ! management_up "$1"; }
ctl() {  # ctl N ARGS...: rabbitmqctl against node N, bounded
    local n=$1; shift
    timeout 60 rabbitmqctl -q -n "$(node_name "$n")" "$@"
}
node_running() { ctl "$1" await_startup >/dev/null 2>&1; }

# The running nodes node 1's management API lists, as "N N ...".
running_members() {
    curl -fsS -m 3 -u guest:guest "$(management_url 1)/api/nodes?columns=name,running" 2>/dev/null \
        | grep -o '"name":"agentstats-c[123]@localhost","running":true' | grep -o 'c[123]' \
        | tr -d c | sort | tr '\n' ' '
}
all_members_running() { [ "$(running_members)" = "1 2 3 " ]; }

launch() {  # launch N: start node N's Erlang VM with its own config and data (not its app state)
    local n=$1 dir=$DIR/c$1
    mkdir -p "$dir/mnesia" "$dir/log"
    cat > "$dir/rabbitmq.conf" <<CONF
listeners.tcp.local = 127.0.0.1:570$n
management.tcp.port = 1570$n
management.tcp.ip = 127.0.0.1
web_stomp.tcp.port = 1571$n
web_stomp.tcp.ip = 127.0.0.1
stomp.listeners.tcp.1 = 127.0.0.1:6170$n
cluster_partition_handling = ignore
CONF
    echo "$PLUGINS" > "$dir/enabled_plugins"
    chown -R rabbitmq:rabbitmq "$DIR" 2>/dev/null || true
    RABBITMQ_NODENAME=$(node_name "$n") RABBITMQ_NODE_PORT=570$n RABBITMQ_DIST_PORT=2570$n \
        RABBITMQ_CONFIG_FILE=$dir/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
        RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log RABBITMQ_PID_FILE=$dir/pid \
        rabbitmq-server -detached
}

start_cluster() {
    if all_members_running && management_up 2 && management_up 3; then
        say "cluster is running"; return 0
    fi
    local n
    for n in 1 2 3; do
        if ! node_running "$n"; then launch "$n"; fi
    done
    for n in 1 2 3; do
        wait_until 120 management_up "$n" || { say "node $n did not come up"; return 1; }
    done
    for n in 2 3; do
        case " $(running_members)" in *" $n "*) continue ;; esac
        say "node $n joins node 1"
        ctl "$n" stop_app && ctl "$n" join_cluster "$(node_name 1)" && ctl "$n" start_app \
            || { say "node $n could not join"; return 1; }
    done
    wait_until 90 all_members_running || { say "members: $(running_members)"; return 1; }
    for n in 1 2 3; do wait_until 60 management_up "$n" || return 1; done
    say "cluster is running"
}

stop_cluster() {
    local n
    for n in 3 2 1; do ctl "$n" stop >/dev/null 2>&1; done
    rm -rf "$DIR"
    return 0
}

check_node_number() {
    case "${1:-}" in 1|2|3) return 0 ;; esac
    echo "node number must be 1, 2 or 3" >&2; exit 2
}

case "${1:-}" in
    start) start_cluster ;;
    stop) stop_cluster ;;
    stop_node)
        # The app only: the Erlang VM stays up so the node can rejoin with start_node.
        check_node_number "${2:-}"
        ctl "$2" stop_app && wait_until 60 management_down "$2"
        ;;
    start_node)
        check_node_number "${2:-}"
        ctl "$2" start_app && wait_until 90 management_up "$2" && wait_until 90 all_members_running
        ;;
    status)
        for n in 1 2 3; do
            if management_up "$n"; then state=up; else state=down; fi
            echo "$(node_name "$n") amqp=570$n management=1570$n web_stomp=1571$n $state"
        done
        echo "running members (node 1's view): $(running_members)"
        ;;
    *) echo "usage: $0 start|stop|stop_node N|start_node N|status" >&2; exit 2 ;;
esac
