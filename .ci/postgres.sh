#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 for the ledger tests and print the line that points them
# at it:
#
#     eval "$(bash .ci/postgres.sh)"        # exports OPENMETER_BILLING_TEST_PG_DSN
#     bash .ci/postgres.sh stop             # stops the cluster and deletes its folder
#
# Idempotent: a second run reuses the cluster that is already running. Only the export line goes to
# stdout; every log line goes to stderr. Installs Debian's `postgresql` package when no server
# binaries are found (needs root and apt-get). Postgres refuses to run as root, so under root the
# cluster belongs to the `postgres` user (created if missing).
#
# Settings (environment): OPENMETER_BILLING_PG_DIR (cluster folder, default
# ${TMPDIR:-/tmp}/openmeter-billing-pg), OPENMETER_BILLING_PG_DB (default openmeter_billing_test).
set -euo pipefail

DIR="${OPENMETER_BILLING_PG_DIR:-${TMPDIR:-/tmp}/openmeter-billing-pg}"
DB="${OPENMETER_BILLING_PG_DB:-openmeter_billing_test}"
DATA="$DIR/data"
LOG="$DIR/postgres.log"

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# The folder holding initdb/pg_ctl/postgres: PATH first, then Debian's versioned folders (newest).
find_bindir() {
    local candidate
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1 \
        && command -v postgres >/dev/null 2>&1 && postgres --version >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/initdb" ] && "$candidate/postgres" --version >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

install_postgres() {
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed and installing it needs root (apt-get install postgresql)"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available"
    log "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

# Run a command as the cluster's owner: ourselves, or `postgres` when we are root.
as_owner() {
    if [ "$(id -u)" != 0 ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$OWNER" -- "$@"
    else
        # su joins the arguments into one shell command line: quote each of them.
        su -s /bin/sh "$OWNER" -c "$(printf '%q ' "$@")"
    fi
}

free_port() {
    local port
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
        return 0
    fi
    for _ in $(seq 1 100); do
        port=$(( (RANDOM % 20000) + 40000 ))
        # A refused connection means nobody listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

dsn() { echo "postgresql://postgres@127.0.0.1:$1/$DB"; }

stop_cluster() {
    if [ -f "$DATA/PG_VERSION" ] && BIN="$(find_bindir)"; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >&2 || true
    fi
    rm -rf "$DIR"
    log "stopped and removed $DIR"
}

main() {
    if [ "$(id -u)" = 0 ]; then
        OWNER=postgres
        if ! id "$OWNER" >/dev/null 2>&1; then
            log "creating system user $OWNER"
            useradd --system --no-create-home --shell /usr/sbin/nologin "$OWNER"
        fi
    else
        OWNER="$(id -un)"
    fi
    if [ "${1:-}" = stop ]; then
        stop_cluster
        return 0
    fi

    BIN="$(find_bindir)" || { install_postgres; BIN="$(find_bindir)" || die "PostgreSQL binaries not found after installing"; }
    log "using $("$BIN/postgres" --version) from $BIN"

    if [ -f "$DIR/port" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
        PORT="$(cat "$DIR/port")"
        log "reusing the cluster already running in $DATA on port $PORT"
    else
        rm -rf "$DIR"
        mkdir -p "$DIR"
        [ "$(id -u)" = 0 ] && chown "$OWNER" "$DIR"
        chmod 700 "$DIR"
        log "initialising a throwaway cluster in $DATA"
        # trust on loopback only: the server listens nowhere else and dies with the CI machine.
        as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 --no-sync >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
        PORT="$(free_port)"
        # fsync off: a test database is thrown away, speed matters more than crash safety.
        as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
            start >&2 || { cat "$LOG" >&2; die "the server did not start"; }
        as_owner sh -c "echo $PORT > '$DIR/port'"
    fi

    if ! as_owner "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
        as_owner "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
        log "created database $DB"
    fi
    echo "export OPENMETER_BILLING_TEST_PG_DSN='$(dsn "$PORT")'"
}

main "$@"
