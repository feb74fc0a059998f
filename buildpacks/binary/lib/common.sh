# shellcheck shell=bash
# Helpers every script of this buildpack sources. Output follows the CF/Heroku habit:
# "-----> step" lines and sub-lines indented by seven spaces.

BP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The name is fixed: a stager mounts the checkout wherever it likes.
BP_NAME=binary
BP_VERSION="$(cat "$BP_DIR/VERSION")"

topic()  { echo "-----> $*"; }
info()   { echo "       $*"; }
indent() { sed -u 's/^/       /'; }
fail()   { echo " !     $*" >&2; exit 1; }

# export_env_dir ENV_DIR — exports the app's variables of the Heroku API (one file each),
# except those that would change how the buildpack itself runs.
export_env_dir() {
    local f name
    [[ -n "${1:-}" && -d "$1" ]] || return 0
    for f in "$1"/*; do
        [[ -f "$f" ]] || continue
        name="${f##*/}"
        [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        case "$name" in
            PATH|HOME|PWD|SHELL|USER|IFS|GIT_DIR|CPATH|CPPATH|LD_PRELOAD|LIBRARY_PATH|LD_LIBRARY_PATH) continue ;;
        esac
        export "$name=$(cat "$f")"
    done
}

# write_config_yml DEPS_DIR INDEX — the file every CF supplier leaves in its deps directory.
write_config_yml() {
    mkdir -p "$1/$2"
    printf 'name: %s\nconfig:\n  version: %s\n' "$BP_NAME" "$BP_VERSION" >"$1/$2/config.yml"
}

# yaml_quote STRING — STRING as a single-quoted YAML scalar on one line.
yaml_quote() {
    local s="${1//$'\n'/ }"
    printf "'%s'" "${s//\'/\'\'}"
}

# release_yaml [WEB_COMMAND] — what bin/release prints; no command: no default web process.
release_yaml() {
    echo "---"
    if [[ -n "${1:-}" ]]; then
        echo "default_process_types:"
        echo "  web: $(yaml_quote "$1")"
    else
        echo "default_process_types: {}"
    fi
}

# procfile_command PROCFILE TYPE — the command of TYPE in a Procfile (empty when none).
procfile_command() {
    [[ -f "$1" ]] || return 0
    sed -n -E "s/^[[:space:]]*$2[[:space:]]*:[[:space:]]*(.*[^[:space:]])[[:space:]]*\$/\1/p" "$1" | head -n 1
}
