# shellcheck shell=bash
# The binary buildpack's staging work, shared by its bin/ scripts.

# make_executable BUILD_DIR — gives the execute bits to the programs the Procfile starts (the
# first word of each command, when it is a file inside the app), which archives and zips made
# elsewhere often lose.
make_executable() {
    local build="$1" real_build prog real
    if [[ ! -f "$build/Procfile" ]]; then
        topic "No Procfile: the start command must come from the push (-c)"
        return 0
    fi
    topic "Running the Procfile's commands as they are"
    real_build="$(realpath "$build")"
    while read -r prog _; do
        [[ -n "$prog" && "$prog" != /* && "$prog" != *'$'* && -f "$build/$prog" ]] || continue
        real="$(realpath "$build/$prog")"
        [[ "$real" == "$real_build"/* ]] || continue
        if [[ ! -x "$real" ]]; then
            chmod +x "$real"
            info "made $prog executable"
        fi
    done < <(sed -n -E 's/^[[:space:]]*[A-Za-z0-9_-]+[[:space:]]*:[[:space:]]*//p' "$build/Procfile")
}
