# shellcheck shell=bash
# PostgreSQL helpers. Source after common.sh.
#
# PostgreSQL refuses to run as root, so every server-side command runs as an
# unprivileged user: `postgres` (created by Debian's postgresql package) or,
# if that is missing, a dedicated system user `cflike-pg`.
#
# Throwaway clusters for tests:
#   url="$(pg_throwaway_start)"    # postgresql://cflike_test@127.0.0.1:PORT/postgres
#   pg_throwaway_stop "$url"       # stops it and removes its directory
# (pg_throwaway_start also sets PG_TMP_DIR and PG_TMP_URL when not run in a subshell.)

# shellcheck source=ops/lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Prints the newest /usr/lib/postgresql/*/bin.
pg_bin_dir() {
    local d
    d="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n1)"
    [[ -n "$d" && -x "$d/initdb" ]] || die "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (install the postgresql package)"
    printf '%s' "$d"
}

# Prints the unprivileged user that runs PostgreSQL, creating `cflike-pg` if needed.
pg_os_user() {
    if [[ "$(id -u)" -ne 0 ]]; then
        id -un
        return
    fi
    if id -u postgres >/dev/null 2>&1; then
        printf 'postgres'
        return
    fi
    if ! id -u cflike-pg >/dev/null 2>&1; then
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin cflike-pg
        log "created system user cflike-pg"
    fi
    printf 'cflike-pg'
}

# pg_as USER CMD... — runs CMD as USER (directly when not root), from /.
pg_as() {
    local user="$1"
    shift
    if [[ "$(id -u)" -ne 0 ]]; then
        (cd / && "$@")
    else
        (cd / && runuser -u "$user" -- "$@")
    fi
}

# pg_user_can_traverse USER DIR
pg_user_can_traverse() {
    local user="$1" dir="$2"
    if [[ "$(id -u)" -ne 0 ]]; then
        test -x "$dir"
    else
        runuser -u "$user" -- test -x "$dir" 2>/dev/null
    fi
}

# Is port free on 127.0.0.1 (nothing listening)?
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Prints a random free loopback port from 20000 up to the start of the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768 by default): a port from that range could be taken by
# any outgoing connection between this choice and the bind, and the suites' agents take their
# apps' host ports from 47000-47999, inside it. A port handed out is reserved for 30 minutes
# (a directory under /tmp/cflike-ports), so that two calls made before either port is bound,
# in this script or in another, never hand out the same one.
random_free_port() {
    local i p low=32768 span reserved=/tmp/cflike-ports
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    [[ "$low" =~ ^[0-9]+$ && $low -gt 21000 ]] || low=32768
    span=$(( low - 20000 ))
    mkdir -p "$reserved"
    find "$reserved" -mindepth 1 -maxdepth 1 -mmin +30 -exec rmdir {} + 2>/dev/null || true
    for i in $(seq 1 50); do
        p=$(( 20000 + (RANDOM * 32768 + RANDOM) % span ))
        if port_free "$p" && ! [[ -e "/tmp/.s.PGSQL.$p" ]] && mkdir "$reserved/$p" 2>/dev/null; then
            printf '%s' "$p"
            return 0
        fi
        : "$i"
    done
    die "no free loopback port found"
}

# ---------------------------------------------------------------- throwaway clusters

# Starts a throwaway cluster (trust auth, superuser cflike_test) in a fresh
# directory under /tmp on a random free loopback port, and prints its URL.
pg_throwaway_start() {
    local bin user dir port attempt
    bin="$(pg_bin_dir)"
    user="$(pg_os_user)"
    for attempt in 1 2 3 4 5; do
        port="$(random_free_port)"
        dir="$(mktemp -d "/tmp/cflike-pgtest-$port.XXXXXX")"
        chmod 0755 "$dir"
        mkdir -p "$dir/data" "$dir/run"
        [[ "$(id -u)" -ne 0 ]] || chown -R "$user:" "$dir"
        if ! pg_as "$user" "$bin/initdb" -D "$dir/data" -U cflike_test -A trust -E UTF8 \
                --locale=C.UTF-8 --no-instructions --no-sync >"$dir/initdb.log" 2>&1; then
            err "initdb failed for the throwaway cluster:"
            cat "$dir/initdb.log" >&2
            rm -rf "$dir"
            return 1
        fi
        cat >>"$dir/data/postgresql.conf" <<EOF

# throwaway test cluster
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/run'
max_connections = 300
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
logging_collector = off
log_min_messages = warning
EOF
        if pg_as "$user" "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null 2>&1; then
            PG_TMP_DIR="$dir"
            PG_TMP_URL="postgresql://cflike_test@127.0.0.1:$port/postgres"
            printf '%s\n' "$PG_TMP_URL" >"$dir/url"
            log "throwaway PostgreSQL up on 127.0.0.1:$port ($dir)"
            printf '%s\n' "$PG_TMP_URL"
            return 0
        fi
        warn "throwaway PostgreSQL failed to start on port $port (attempt $attempt):"
        tail -n 5 "$dir/postgres.log" >&2 2>/dev/null || true
        pg_as "$user" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$dir"
    done
    err "could not start a throwaway PostgreSQL"
    return 1
}

# pg_throwaway_stop [URL|DIR] — stops the cluster and removes its directory.
# Without an argument, uses PG_TMP_DIR.
pg_throwaway_stop() {
    local arg="${1:-${PG_TMP_DIR:-}}" dir="" port d
    [[ -n "$arg" ]] || return 0
    if [[ -d "$arg" ]]; then
        dir="$arg"
    elif [[ "$arg" =~ ^postgresql://[^@]*@127\.0\.0\.1:([0-9]+)/ ]]; then
        port="${BASH_REMATCH[1]}"
        for d in /tmp/cflike-pgtest-"$port".*; do
            [[ -f "$d/url" ]] && [[ "$(cat "$d/url")" == "$arg" ]] && dir="$d"
        done
    fi
    if [[ -z "$dir" || "$dir" != /tmp/cflike-pgtest-* ]]; then
        warn "no throwaway cluster found for '$arg'"
        return 0
    fi
    local bin user
    bin="$(pg_bin_dir)"
    user="$(pg_os_user)"
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        pg_as "$user" "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    [[ "$dir" != "${PG_TMP_DIR:-}" ]] || { PG_TMP_DIR=""; PG_TMP_URL=""; }
    log "throwaway PostgreSQL stopped and removed ($dir)"
}
