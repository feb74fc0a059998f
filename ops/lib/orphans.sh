# shellcheck shell=bash
# Components of this platform home that outlived their supervisord (it was killed, or one was
# started by hand): found and stopped before ops/up starts the supervised ones, and by ops/down.
# Only `cf-like-server <component>` processes of THIS home are ever signalled (ops/lib/orphans.py
# says which): never an app container's shim, never PostgreSQL, never another home's platform.
# Source after supervisor.sh.

# How long a leftover gets after SIGTERM (the agent and stager shut down gracefully, as under
# supervisord's stopwaitsecs), then after SIGKILL.
ORPHAN_TERM_SECONDS="${ORPHAN_TERM_SECONDS:-15}"
ORPHAN_KILL_SECONDS=5

# platform_setting SECTION KEY DEFAULT: the value the server reads (environment, config, default).
platform_setting() {
    local name value
    name="CFLIKE_${1^^}_${2^^}"
    name="${name//-/_}"
    if [[ -n "${!name+set}" ]]; then
        printf '%s' "${!name}"
        return
    fi
    value="$(config_value "$1" "$2")"
    printf '%s' "${value:-$3}"
}

# The lock files of the agent's and the stager's state directories (see DirectoryLock).
platform_state_locks() {
    local section dir
    for section in dea stager; do
        dir="$(platform_setting "$section" state_dir "var/$section")"
        [[ "$dir" == /* ]] || dir="$CFLIKE_PLATFORM_HOME/$dir"
        printf '%s\n' "$dir/owner.lock"
    done
}

# NAME=HOST:PORT of every listener of the components.
platform_listens() {
    local spec name key address
    for spec in controller:listen router:listen router:tls_listen router:status_listen health_manager:listen; do
        name="${spec%%:*}"
        key="${spec#*:}"
        address="$(platform_setting "$name" "$key" "")"
        case "$spec" in
            controller:listen) address="${address:-127.0.0.1:9022}" ;;
            router:listen) address="${address:-127.0.0.1:8080}" ;;
            router:status_listen) address="${address:-127.0.0.1:8082}" ;;
            health_manager:listen) address="${address:-127.0.0.1:8083}" ;;
        esac
        [[ -z "$address" ]] || printf '%s\n' "$name.$key=$address"
    done
}

# scan_platform_processes: ops/lib/orphans.py's findings for this home (orphan and foreign lines).
scan_platform_processes() {
    local args=(--home "$CFLIKE_PLATFORM_HOME") sup item
    if sup="$(supervisord_pid)"; then args+=(--supervisor-pid "$sup"); fi
    while IFS= read -r item; do args+=(--lock "$item"); done < <(platform_state_locks)
    while IFS= read -r item; do args+=(--listen "$item"); done < <(platform_listens)
    timeout 30 python3 "$REPO_ROOT/ops/lib/orphans.py" "${args[@]}"
}

# signal_and_wait SIGNAL SECONDS PID...: sends SIGNAL to each pid, waits until all are gone;
# prints those still alive at the deadline.
signal_and_wait() {
    local signal="$1" seconds="$2" pid deadline left=()
    shift 2
    # Only a cf-like-server: a pid that exited since the scan may name something else by now.
    for pid in "$@"; do
        if is_server_pid "$pid"; then kill "-$signal" "$pid" 2>/dev/null || true; fi
    done
    deadline=$(( SECONDS + seconds ))
    while :; do
        left=()
        for pid in "$@"; do ! is_server_pid "$pid" || left+=("$pid"); done
        [[ ${#left[@]} -gt 0 && $SECONDS -lt $deadline ]] || break
        sleep 0.2
    done
    [[ ${#left[@]} -eq 0 ]] || printf '%s\n' "${left[@]}"
}

# stop_platform_orphans up|down: stops every component of this home that is not under its live
# supervisord, then removes pid files naming no live component. For `up` a lock or port held by
# anything else stops the script naming it (the supervised component could never start).
stop_platform_orphans() {
    local mode="$1" scan pids=() foreign=() line
    scan="$(scan_platform_processes)" || die "looking for leftover components (ops/lib/orphans.py) failed or took over 30s"
    mapfile -t pids < <(announce_orphans <<<"$scan")
    if [[ ${#pids[@]} -gt 0 ]]; then
        stop_pids "${pids[@]}"
        scan="$(scan_platform_processes)" || die "looking for leftover components (ops/lib/orphans.py) failed or took over 30s"
        if grep -q '^orphan' <<<"$scan"; then
            die "leftover components still running after they were stopped (something restarts them?): $(grep '^orphan' <<<"$scan" | cut -f2,3 | tr '\t\n' ' ;')"
        fi
        log "stopped ${#pids[@]} leftover component(s)"
    fi
    remove_stale_pid_files
    mapfile -t foreign < <(awk -F'\t' '$1 == "foreign" { print "pid " $2 " " $3 ": " $4 }' <<<"$scan")
    [[ ${#foreign[@]} -gt 0 ]] || return 0
    for line in "${foreign[@]}"; do
        if [[ "$mode" == up ]]; then
            err "$line, which is not a component of this platform ($CFLIKE_PLATFORM_HOME)"
        else
            warn "$line (not a component of this platform; left alone)"
        fi
    done
    [[ "$mode" != up ]] || die "stop the process(es) above or change the platform's listen addresses or state directories, then run ops/up again"
}

# announce_orphans: reads a scan, warns about each orphan and prints its pid.
announce_orphans() {
    local kind pid what rest
    while IFS=$'\t' read -r kind pid what rest; do
        [[ "$kind" == orphan ]] || continue
        warn "stopping leftover $what (pid $pid, not under this platform's supervisord: $rest)"
        printf '%s\n' "$pid"
    done
}

# stop_pids PID...: SIGTERM, SIGKILL after ORPHAN_TERM_SECONDS; dies naming what outlives SIGKILL.
stop_pids() {
    local left
    left="$(signal_and_wait TERM "$ORPHAN_TERM_SECONDS" "$@")"
    [[ -n "$left" ]] || return 0
    warn "still running ${ORPHAN_TERM_SECONDS}s after SIGTERM, sending SIGKILL: $(tr '\n' ' ' <<<"$left")"
    # shellcheck disable=SC2086  # one pid a word
    left="$(signal_and_wait KILL "$ORPHAN_KILL_SECONDS" $left)"
    [[ -z "$left" ]] || die "stopping leftover components: pid(s) $(tr '\n' ' ' <<<"$left")still alive ${ORPHAN_KILL_SECONDS}s after SIGKILL"
}

# is_server_pid PID: PID is alive and runs cf-like-server (a zombie has no command line).
is_server_pid() {
    local argv0
    [[ "$1" =~ ^[0-9]+$ ]] || return 1
    argv0="$(tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline" | head -n1)" || return 1
    [[ "${argv0##*/}" == cf-like-server ]]
}

# remove_stale_pid_files: var/run/<component>.pid files whose pid is no longer a cf-like-server.
remove_stale_pid_files() {
    local f
    for f in "$VAR_DIR"/run/*.pid; do
        [[ -f "$f" && "$f" != "$SUPERVISOR_PID" ]] || continue
        is_server_pid "$(head -n1 "$f" 2>/dev/null || true)" || rm -f "$f"
    done
}
