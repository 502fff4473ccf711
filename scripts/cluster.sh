#!/usr/bin/env bash
# A local 3-node RabbitMQ cluster on one machine, from the Debian `rabbitmq-server` package.
# No Docker, no root needed (it runs as root too). Each node has its own name, ports and
# data directory under $ROUTING_CLUSTER_DIR; the three share one Erlang cookie (one HOME).
#
#   scripts/cluster.sh up            start the nodes that are not running, join them (idempotent)
#   scripts/cluster.sh status        which nodes run, and the cluster's running nodes
#   scripts/cluster.sh down          stop every node and remove the data (fine when already down)
#   scripts/cluster.sh stop-node N   stop RabbitMQ on node N (1-3); its Erlang VM stays up
#   scripts/cluster.sh start-node N  start it again: it rejoins the cluster
#   scripts/cluster.sh ctl N ARGS    rabbitmqctl ARGS against node N (list_queues name leader)
#   scripts/cluster.sh urls          print only the ROUTING_URL value
#
#   node N:  rabbit-cluster-N@localhost, AMQP 127.0.0.1:568N, management API
#            http://127.0.0.1:1568N (guest/guest), Erlang distribution 2568N
#   Ports stay clear of a local broker's 5672/15672/25672.
#
# RabbitMQ 4.0 instead of the machine's own release: ROUTING_CLUSTER_ROOT=/var/lib/routing/trixie
# (the chroot of scripts/rabbitmq4.sh, as root) runs the nodes from the chroot, with their data
# under its /tmp/routing-cluster4, named rabbit4-cluster-N@localhost on ports 569N, 1569N, 2569N,
# so both clusters can run at once (they share the host's epmd). ROUTING_CLUSTER_NAME and
# ROUTING_CLUSTER_PORT set the name and the port base (5680) for either.
set -euo pipefail

ROOT="${ROUTING_CLUSTER_ROOT:-}"
if [[ -n $ROOT ]]; then
    NAME="${ROUTING_CLUSTER_NAME:-rabbit4-cluster}"
    PORT_BASE="${ROUTING_CLUSTER_PORT:-5690}"
    BASE="${ROUTING_CLUSTER_DIR:-/tmp/routing-cluster4}"  # as the nodes see it, inside the chroot
else
    NAME="${ROUTING_CLUSTER_NAME:-rabbit-cluster}"
    PORT_BASE="${ROUTING_CLUSTER_PORT:-5680}"
    BASE="${ROUTING_CLUSTER_DIR:-${TMPDIR:-/tmp}/routing-cluster}"
fi
HOST_BASE="$ROOT$BASE"  # the same directory, as this script sees it
NODES=(1 2 3)
START_TIMEOUT="${ROUTING_CLUSTER_START_TIMEOUT:-120}"
MARKER=.routing-cluster  # `down` removes only a directory that has it

# The real scripts, not the /usr/sbin wrappers: those switch to the `rabbitmq` user and
# read the system node's cookie and config.
SBIN=""
for dir in /usr/lib/rabbitmq/bin /usr/local/sbin /usr/sbin /opt/rabbitmq/sbin; do
    if [[ -x "$ROOT$dir/rabbitmq-server" && -x "$ROOT$dir/rabbitmqctl" ]]; then
        SBIN="$dir"
        break
    fi
done

die() {
    echo "cluster: $*" >&2
    exit 1
}

node_name() { echo "$NAME-$1@localhost"; }
amqp_port() { echo $((PORT_BASE + $1)); }
management_port() { echo $((PORT_BASE + 10000 + $1)); }
dist_port() { echo $((PORT_BASE + 20000 + $1)); }

urls() {
    local out="" n url
    for n in "${NODES[@]}"; do
        # Each URL names its node's management API (`routing declare`, `diff` read it).
        url="amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/?management=http://127.0.0.1:$(management_port "$n")"
        out+="${out:+,}$url"
    done
    echo "$out"
}

# Everything a node (and rabbitmqctl talking to it) must not share with another node or
# with the system broker; only HOME, and so the Erlang cookie, is shared by the three.
node_env() {
    local n=$1 dir="$BASE/node$1"
    echo HOME="$BASE/home"
    echo RABBITMQ_NODENAME="$(node_name "$n")"
    echo RABBITMQ_NODE_PORT="$(amqp_port "$n")"
    echo RABBITMQ_DIST_PORT="$(dist_port "$n")"
    echo RABBITMQ_MNESIA_BASE="$dir/mnesia"
    echo RABBITMQ_LOG_BASE="$dir/log"
    echo RABBITMQ_PID_FILE="$dir/pid"
    echo RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
    echo RABBITMQ_PLUGINS_EXPAND_DIR="$dir/plugins-expand"
    echo RABBITMQ_FEATURE_FLAGS_FILE="$dir/feature_flags"
    echo RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    echo RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
    echo RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
    # Three VMs share the machine's cores: no busy-waiting schedulers; distribution on loopback.
    echo "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=+sbwt none +sbwtdcpu none +sbwtdio none -kernel inet_dist_use_interface {127,0,0,1}"
}

run_as_node() {
    local n=$1
    shift
    local -a vars
    mapfile -t vars < <(node_env "$n")
    if [[ -n $ROOT ]]; then
        chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "${vars[@]}" "$@"
    else
        env "${vars[@]}" "$@"
    fi
}

ctl() {
    local n=$1
    shift
    run_as_node "$n" "$SBIN/rabbitmqctl" -n "$(node_name "$n")" "$@"
}

# Quick checks by port, no CLI start-up: the Erlang distribution port answers while the
# VM runs, the AMQP port while RabbitMQ itself runs (stop_app closes it).
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
vm_running() { answers "$(dist_port "$1")"; }
app_running() { answers "$(amqp_port "$1")"; }

prepare() {
    if [[ -n $ROOT ]] && ! mountpoint -q "$ROOT/proc"; then
        die "$ROOT/proc is not mounted: run scripts/rabbitmq4.sh up first"
    fi
    if [[ -d $HOST_BASE && ! -f "$HOST_BASE/$MARKER" && -n "$(ls -A "$HOST_BASE")" ]]; then
        die "$HOST_BASE is not empty and was not made by this script; set ROUTING_CLUSTER_DIR"
    fi
    mkdir -p "$HOST_BASE/home"
    : >"$HOST_BASE/$MARKER"
    if [[ ! -f "$HOST_BASE/home/.erlang.cookie" ]]; then
        (
            umask 077
            od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$HOST_BASE/home/.erlang.cookie"
        )
        chmod 400 "$HOST_BASE/home/.erlang.cookie"
    fi
    local n dir
    for n in "${NODES[@]}"; do
        dir="$HOST_BASE/node$n"
        mkdir -p "$dir/log"
        : >"$dir/rabbitmq-env.conf"
        echo "[rabbitmq_management]." >"$dir/enabled_plugins"
        {
            echo "listeners.tcp.default = 127.0.0.1:$(amqp_port "$n")"
            echo "loopback_users = none"
            echo "management.tcp.ip = 127.0.0.1"
            echo "management.tcp.port = $(management_port "$n")"
        } >"$dir/rabbitmq.conf"
    done
}

await_node() {
    local n=$1 deadline=$((SECONDS + START_TIMEOUT))
    # `-detached` returns before the node registers with epmd: retry until it answers.
    until ctl "$n" await_startup --timeout 30 >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "node $n does not answer after ${START_TIMEOUT}s; logs in $HOST_BASE/node$n/log" \
            "(a node left running from a removed $BASE has another cookie: stop it by hand)"
        sleep 0.5
    done
}

start_vm() {
    local n=$1
    echo "cluster: starting node $n ($(node_name "$n"), port $(amqp_port "$n"))"
    run_as_node "$n" "$SBIN/rabbitmq-server" -detached >"$HOST_BASE/node$n/log/start.out" 2>&1 ||
        die "node $n did not launch; see $HOST_BASE/node$n/log"
}

member_list() {
    # `disk_nodes` or `running_nodes` of the cluster as node $1 sees it, one name a line.
    ctl "$1" cluster_status --formatter json 2>/dev/null | tr -d ' \n' |
        grep -o "\"$2\":\[[^]]*\]" | grep -o "$NAME-[0-9]@[a-z]*" || true
}

running_nodes() {
    local n out
    for n in "${NODES[@]}"; do
        app_running "$n" || continue
        out=$(member_list "$n" running_nodes)
        [[ -n $out ]] && echo "$out" && return 0
    done
    return 0
}

join() {
    # join_cluster resets the node itself (rabbit_mnesia:join_cluster/2): its own data goes.
    local n=$1 log="$HOST_BASE/node$1/log/join.out"
    echo "cluster: node $n joins $(node_name 1)"
    {
        ctl "$n" stop_app
        ctl "$n" join_cluster "$(node_name 1)"
    } >"$log" 2>&1 || die "node $n could not join the cluster; see $log"
}

cmd_up() {
    [[ -n $SBIN ]] || die "rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)"
    local started=$SECONDS n members count
    local -a booting=()
    prepare
    # Start every stopped node before waiting for any: a clustered node that boots alone
    # waits for its peers.
    for n in "${NODES[@]}"; do
        if ! vm_running "$n"; then
            start_vm "$n"
            booting+=("$n")
        elif ! app_running "$n"; then
            echo "cluster: starting RabbitMQ again on node $n"
            ctl "$n" start_app >/dev/null 2>&1 &
            booting+=("$n")
        fi
    done
    wait
    for n in "${booting[@]}"; do await_node "$n"; done
    members=$(member_list 1 disk_nodes)
    booting=()
    for n in "${NODES[@]:1}"; do
        if ! grep -qx "$(node_name "$n")" <<<"$members"; then
            join "$n"
            ctl "$n" start_app >/dev/null 2>&1 & # boots while the next node joins
            booting+=("$n")
        fi
    done
    wait
    for n in "${booting[@]}"; do await_node "$n"; done
    count=$(member_list 1 running_nodes | wc -l)
    ((count == ${#NODES[@]})) || die "only $count of ${#NODES[@]} nodes are running in the cluster"
    echo "cluster: ${#NODES[@]} nodes running ($((SECONDS - started)) s); management API http://127.0.0.1:$(management_port 1) (and $(management_port 2), $(management_port 3))"
    echo "export ROUTING_URL=$(urls)"
}

cmd_status() {
    # Exit code: 0 when all nodes run, 1 when some do, 3 when none does.
    local n state up=0
    [[ -n $SBIN ]] || die "rabbitmq-server is not installed"
    for n in "${NODES[@]}"; do
        if app_running "$n"; then
            state=running
            up=$((up + 1))
        elif vm_running "$n"; then
            state="stopped (its VM is up: start-node $n)"
        else
            state=down
        fi
        echo "node $n $(node_name "$n") amqp://127.0.0.1:$(amqp_port "$n")/ $state"
    done
    ((up > 0)) || return 3
    echo "running nodes: $(running_nodes | tr '\n' ' ')"
    echo "export ROUTING_URL=$(urls)"
    ((up == ${#NODES[@]})) || return 1
}

stop_vm() {
    local n=$1 pid="" tries=0
    vm_running "$n" || return 0
    echo "cluster: stopping node $n"
    [[ -f "$HOST_BASE/node$n/pid" ]] && pid=$(cat "$HOST_BASE/node$n/pid")
    ctl "$n" stop >/dev/null 2>&1 || true
    # `stop` returns before the VM has exited; wait for its port, then end it by its pid
    # (only ever the node this script started).
    while vm_running "$n" && ((tries++ < 60)); do sleep 0.5; done
    if vm_running "$n" && [[ $pid =~ ^[0-9]+$ ]]; then
        kill "$pid" 2>/dev/null || true
    fi
}

cmd_down() {
    local n
    [[ -d $HOST_BASE ]] || {
        echo "cluster: down"
        return 0
    }
    [[ -f "$HOST_BASE/$MARKER" ]] || die "$HOST_BASE was not made by this script: not removing it"
    if [[ -n $SBIN ]]; then
        for n in "${NODES[@]}"; do stop_vm "$n" & done
        wait
    fi
    rm -rf "$HOST_BASE"
    echo "cluster: down"
}

node_arg() {
    [[ ${1:-} =~ ^[1-3]$ ]] || die "give a node number, 1 to 3"
}

cmd_stop_node() {
    node_arg "${1:-}"
    ctl "$1" stop_app >/dev/null
    echo "cluster: node $1 stopped (its VM stays up)"
}

cmd_start_node() {
    node_arg "${1:-}"
    if ! vm_running "$1"; then
        start_vm "$1"
    else
        ctl "$1" start_app >/dev/null
    fi
    await_node "$1"
    echo "cluster: node $1 running; cluster running nodes: $(running_nodes | tr '\n' ' ')"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
stop-node) cmd_stop_node "${2:-}" ;;
start-node) cmd_start_node "${2:-}" ;;
ctl)
    node_arg "${2:-}"
    ctl "$2" "${@:3}"
    ;;
urls) urls ;;
*)
    echo "usage: $0 up|down|status|stop-node N|start-node N|ctl N ARGS...|urls" >&2
    exit 2
    ;;
esac
