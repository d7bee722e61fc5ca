#!/usr/bin/env bash
# Start a throwaway Redis on 127.0.0.1 for the shared-cache tests and print the line that points them
# at it:
#
#     eval "$(bash .ci/redis.sh)"        # exports OPENMETER_BILLING_TEST_REDIS_URL
#     bash .ci/redis.sh stop             # stops the server and deletes its folder
#
# Idempotent: a second run reuses the server that is already running. Only the export line goes to
# stdout; every log line goes to stderr. Installs Debian's `redis-server` package when no server
# binary is found (needs root and apt-get). Nothing is persisted: no RDB snapshots, no AOF.
#
# Settings (environment): OPENMETER_BILLING_REDIS_DIR (server folder, default
# ${TMPDIR:-/tmp}/openmeter-billing-redis).
set -euo pipefail

DIR="${OPENMETER_BILLING_REDIS_DIR:-${TMPDIR:-/tmp}/openmeter-billing-redis}"

log() { echo "redis.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

install_redis() {
    [ "$(id -u)" = 0 ] || die "redis-server is not installed and installing it needs root (apt-get install redis-server)"
    command -v apt-get >/dev/null 2>&1 || die "redis-server is not installed and apt-get is not available"
    log "installing Debian's redis-server package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends redis-server >&2
}

free_port() {
    local port
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return 0
    fi
    for _ in $(seq 1 100); do
        port=$(( (RANDOM % 20000) + 40000 ))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

running() {
    [ -f "$DIR/port" ] && [ -f "$DIR/redis.pid" ] && kill -0 "$(cat "$DIR/redis.pid")" 2>/dev/null \
        && redis-cli -h 127.0.0.1 -p "$(cat "$DIR/port")" ping 2>/dev/null | grep -q PONG
}

stop_server() {
    if [ -f "$DIR/redis.pid" ]; then
        kill "$(cat "$DIR/redis.pid")" 2>/dev/null || true
    fi
    rm -rf "$DIR"
    log "stopped and removed $DIR"
}

main() {
    if [ "${1:-}" = stop ]; then
        stop_server
        return 0
    fi
    command -v redis-server >/dev/null 2>&1 || install_redis
    command -v redis-server >/dev/null 2>&1 || die "redis-server not found after installing"
    log "using $(redis-server --version)"

    if running; then
        PORT="$(cat "$DIR/port")"
        log "reusing the server already running on port $PORT"
    else
        rm -rf "$DIR"
        mkdir -p "$DIR"
        chmod 700 "$DIR"
        PORT="$(free_port)"
        # Loopback only, no persistence: a test cache is thrown away with the machine.
        redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes --dir "$DIR" \
            --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" --save "" --appendonly no \
            >&2 || die "redis-server did not start"
        for _ in $(seq 1 50); do
            redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG && break
            sleep 0.1
        done
        redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG \
            || { cat "$DIR/redis.log" >&2; die "the server did not answer"; }
        echo "$PORT" > "$DIR/port"
    fi
    echo "export OPENMETER_BILLING_TEST_REDIS_URL='redis://127.0.0.1:$PORT/0'"
}

main "$@"
