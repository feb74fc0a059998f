# Shared by the end-to-end suites under ops/tests (sourced, not run).
#
# The suites run with `set -e`: a step outside `check` that fails (a component that never comes
# up, a setup command) ends the suite at once. Without help that ending is silent: no "not ok"
# line, no summary line, nothing to say which step or why. suite_guard records the failing
# command through an ERR trap; suite_stopped_report, called first in the suite's EXIT trap, then
# names it, shows the last lines of the components' logs and prints the summary line with the
# stop counted as a failure, so ops/test reports the suite as failed and goes on.

# suite_guard LABEL LOG_DIR...: LABEL is the summary line's label ("health" for "health: N
# passed, N failed"); every *.log file directly in the LOG_DIRs is shown when the suite stops.
suite_guard() {
    SUITE_LABEL="$1"
    shift
    SUITE_LOG_DIRS=("$@")
    SUITE_STOPPED=""
    trap 'suite_failed_step $? $LINENO "$BASH_COMMAND"' ERR
}

# suite_failed_step STATUS LINE COMMAND (the ERR trap): remembers the step that ends the suite.
# Failures inside `set +e` stretches are expected by the suite and are not recorded.
suite_failed_step() {
    [[ $- == *e* ]] || return 0
    local text
    # The command as written in the suite (BASH_COMMAND is the last one run, maybe in a function).
    text="$(sed -n "${2}p" "$0" 2>/dev/null | sed -E 's/^[[:space:]]+//')"
    SUITE_STOPPED="line $2 of $(basename "$0"): ${text:-$3} (exit status $1)"
}

# suite_stopped_report RC: prints the report when the suite is ending on a failed step.
suite_stopped_report() {
    local rc="$1" dir file
    [[ $rc -ne 0 && -n "${SUITE_STOPPED:-}" ]] || return 0
    echo "not ok - the suite stopped at $SUITE_STOPPED"
    for dir in "${SUITE_LOG_DIRS[@]}"; do
        for file in "$dir"/*.log; do
            [[ -s "$file" ]] || continue
            echo "    --- last lines of $(basename "$file"):"
            tail -n 15 "$file" | sed 's/^/    /'
        done
    done
    echo "$SUITE_LABEL: ${PASS:-0} passed, $(( ${FAIL:-0} + 1 )) failed"
}

# suite_end: the suite's last step: prints the summary line and exits 0 when nothing failed.
suite_end() {
    trap - ERR
    SUITE_STOPPED=""
    echo "$SUITE_LABEL: $PASS passed, $FAIL failed"
    [[ $FAIL -eq 0 ]] && exit 0
    exit 1
}

# remove_cgroup_parents ID...: the cgroup directories that the named agents' and stagers'
# containers lived under (/cflike/ID in every hierarchy), depth first, once their containers
# are deleted. A stager removes its own when it stops; an agent keeps its own across restarts
# (its instances outlive it) and only `cf-like-server dea-cleanup` removes it.
remove_cgroup_parents() {
    local id root
    for id in "$@"; do
        for root in /sys/fs/cgroup/cflike /sys/fs/cgroup/*/cflike; do
            if [[ -d "$root/$id" ]]; then find "$root/$id" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi
        done
    done
}
