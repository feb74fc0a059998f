# shellcheck shell=bash
# The platform's own supervisord (never the system's /etc/supervisor or its service).
# Source after common.sh.
# shellcheck disable=SC2034  # the variables are used by the sourcing scripts

SUPERVISOR_DIR="$VAR_DIR/supervisor"
SUPERVISOR_CONF="$SUPERVISOR_DIR/supervisord.conf"
SUPERVISOR_SOCK="$VAR_DIR/run/supervisor.sock"
SUPERVISOR_PID="$VAR_DIR/run/supervisord.pid"

# Prints the pid of our supervisord if it runs (with our config file).
supervisord_pid() {
    local pid
    [[ -f "$SUPERVISOR_PID" ]] || return 1
    pid="$(head -n1 "$SUPERVISOR_PID" 2>/dev/null || true)"
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$SUPERVISOR_CONF" || return 1
    printf '%s' "$pid"
}

supervisord_running() { supervisord_pid >/dev/null; }

sctl() {
    supervisorctl -c "$SUPERVISOR_CONF" "$@"
}
