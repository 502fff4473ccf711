#!/usr/bin/env bash
# RabbitMQ 4.0.5 (Debian trixie's package, Erlang 27) beside the machine's RabbitMQ 3.10.8, in a trixie chroot.
#
#   scripts/rabbitmq4.sh up       make the chroot if it is not there, then start the node and wait for it
#   scripts/rabbitmq4.sh down     stop the node (the chroot stays for the next run)
#   scripts/rabbitmq4.sh status   is it answering?
#   scripts/rabbitmq4.sh urls     the AMQP and management URLs, for ROUTING_TEST_URL4 and friends
#   scripts/rabbitmq4.sh ctl ...  rabbitmqctl inside the chroot
#
# Needs root (debootstrap, chroot, mount). A chroot left by an earlier run is reused: only the missing steps run,
# and each step says how long it took. Settings, from the environment:
#   ROUTING_RABBITMQ4_ROOT   where the chroot lives (default /var/lib/routing/trixie)
#   ROUTING_RABBITMQ4_PORT   AMQP port (default 5674); management on 10000 + it, distribution on 20000 + it;
#                            the node is rabbit4@localhost on 5674, rabbit4-PORT@localhost on another port
#                            (two of them share the host's epmd, so their names must differ)
set -euo pipefail

ROOT=${ROUTING_RABBITMQ4_ROOT:-/var/lib/routing/trixie}
PORT=${ROUTING_RABBITMQ4_PORT:-5674}
MGMT_PORT=$((PORT + 10000))
DIST_PORT=$((PORT + 20000))
if [ "$PORT" = 5674 ]; then NODE=rabbit4@localhost; else NODE=rabbit4-$PORT@localhost; fi
READY=$ROOT/.routing-rabbitmq4-ready

say() { echo "rabbitmq4: $*" >&2; }
step() {  # step NAME COMMAND...: run it and say how long it took
    local name=$1 start=$SECONDS
    shift
    "$@"
    say "$name: $((SECONDS - start)) s"
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/var/lib/rabbitmq LANG=C.UTF-8 "$@"; }
node_env() { in_root RABBITMQ_NODENAME="$NODE" RABBITMQ_DIST_PORT="$DIST_PORT" RABBITMQ_NODE_PORT="$PORT" "$@"; }

mirror() {
    # The Debian mirror apt already uses on this machine.
    local uri
    uri=$(grep -hoE '^URIs: *[^ ]+' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 | awk '{print $2}')
    [ -n "$uri" ] || uri=$(grep -hoE '^deb +[^ ]+' /etc/apt/sources.list 2>/dev/null | head -n 1 | awk '{print $2}')
    echo "${uri:-http://deb.debian.org/debian}"
}

mount_api() {
    mountpoint -q "$ROOT/proc" || mount -t proc proc "$ROOT/proc"
    mountpoint -q "$ROOT/dev" || mount --bind /dev "$ROOT/dev"
}

bootstrap() {
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
    mkdir -p "$(dirname "$ROOT")"
    # A half-made chroot (an earlier run stopped midway) is made again from scratch.
    if [ -e "$ROOT" ] && [ ! -x "$ROOT/usr/bin/apt-get" ]; then
        umount "$ROOT/proc" "$ROOT/dev" 2>/dev/null || true
        rm -rf "$ROOT"
    fi
    [ -x "$ROOT/usr/bin/apt-get" ] || debootstrap --variant=minbase trixie "$ROOT" "$(mirror)" >/dev/null
}

install_rabbitmq() {
    mount_api
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    cp /etc/hosts "$ROOT/etc/hosts"
    printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
    chmod +x "$ROOT/usr/sbin/policy-rc.d"
    in_root DEBIAN_FRONTEND=noninteractive apt-get update -qq
    in_root DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rabbitmq-server >/dev/null
}

configure() {
    cat >"$ROOT/etc/rabbitmq/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$PORT
management.tcp.port = $MGMT_PORT
management.tcp.ip = 127.0.0.1
loopback_users = none
EOF
    echo '[rabbitmq_management].' >"$ROOT/etc/rabbitmq/enabled_plugins"
    in_root chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq /etc/rabbitmq
    touch "$READY"
}

start() {
    mount_api
    if port_open "$PORT"; then
        say "already answering on 127.0.0.1:$PORT"
    else
        # rabbitmq-server runs as root in the chroot; its files must stay the rabbitmq user's.
        node_env sh -c 'rabbitmq-server -detached >/dev/null 2>&1 || true'
    fi
    local i
    for i in $(seq 1 90); do port_open "$PORT" && port_open "$MGMT_PORT" && break; sleep 1; done
    port_open "$PORT" || { say "did not come up on 127.0.0.1:$PORT"; tail -n 40 "$ROOT"/var/log/rabbitmq/*.log >&2 || true; exit 1; }
    node_env rabbitmqctl -q await_startup >/dev/null 2>&1 || true
    port_open "$MGMT_PORT" || say "warning: the management API is not answering on 127.0.0.1:$MGMT_PORT"
}

case "${1:-up}" in
up)
    [ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot, mount)"; exit 1; }
    if [ -e "$READY" ]; then
        say "reusing the chroot at $ROOT"
    else
        step "debootstrap trixie into $ROOT" bootstrap
        step "apt-get install rabbitmq-server" install_rabbitmq
        step "configure" configure
    fi
    step "start $NODE on 127.0.0.1:$PORT (management $MGMT_PORT)" start
    say "$(node_env rabbitmqctl -q version 2>/dev/null || echo '?') on amqp://guest:guest@127.0.0.1:$PORT/%2F"
    ;;
down)
    if [ -e "$READY" ] && port_open "$PORT"; then node_env rabbitmqctl -q stop >/dev/null 2>&1 || true; fi
    ;;
status)
    port_open "$PORT" && { say "answering on 127.0.0.1:$PORT"; exit 0; }
    say "not answering on 127.0.0.1:$PORT"
    exit 1
    ;;
urls)
    echo "amqp://guest:guest@127.0.0.1:$PORT/%2F?management=http://127.0.0.1:$MGMT_PORT"
    ;;
ctl)
    shift
    node_env rabbitmqctl "$@"
    ;;
*)
    echo "usage: $0 up|down|status|urls|ctl ARGS..." >&2
    exit 2
    ;;
esac
