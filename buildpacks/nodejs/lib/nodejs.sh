# shellcheck shell=bash
# The nodejs buildpack's staging work, shared by its bin/ scripts.

# package_fact FACT BUILD_DIR — see lib/package.js.
package_fact() {
    node "$BP_DIR/lib/package.js" "$1" "$2"
}

# check_node BUILD_DIR — the stack's node, and a readable package.json if there is one.
check_node() {
    command -v node >/dev/null || fail "node is not on this stack"
    topic "Using node $(node --version) from the stack"
    local engine
    engine="$(package_fact engine "$1")" || fail "package.json cannot be read (see above)"
    [[ -z "$engine" ]] || info "note: engines.node ($engine) is not checked: the stack has one node"
}

# install_modules BUILD_DIR CACHE_DIR — a vendored node_modules is used as is; otherwise
# npm installs the production dependencies, if there are any (npm's cache lives in CACHE_DIR).
install_modules() {
    local build="$1" cache="$2" count action=install
    if [[ -d "$build/node_modules" ]]; then
        topic "Using the vendored node_modules as is"
        return 0
    fi
    count="$(package_fact dependencies "$build")"
    if [[ "$count" -eq 0 ]]; then
        topic "No dependencies in package.json: nothing to install"
        return 0
    fi
    command -v npm >/dev/null ||
        fail "package.json names $count dependencies and this stack has no npm: vendor node_modules (npm install --omit=dev) before pushing"
    if [[ -f "$build/package-lock.json" || -f "$build/npm-shrinkwrap.json" ]]; then
        action=ci
    fi
    topic "Installing the dependencies of package.json ($count) with npm $action --omit=dev"
    if ! (cd "$build" && npm_config_cache="$cache/npm" npm_config_update_notifier=false \
        npm_config_fund=false npm_config_audit=false \
        npm "$action" --omit=dev --no-progress) 2>&1 | indent; then
        fail "npm $action failed (see above)"
    fi
}

# write_profile FILE — the launch settings: NODE_ENV and the app's node_modules/.bin on PATH.
write_profile() {
    cat >"$1" <<'PROFILE'
# Node.js settings from the nodejs buildpack.
export NODE_ENV="${NODE_ENV:-production}"
export PATH="$HOME/node_modules/.bin:$PATH"
PROFILE
}

# start_command BUILD_DIR — the default web command: nothing when the Procfile has a web
# line, else package.json's scripts.start (run by bash as npm would run it), else
# node server.js.
start_command() {
    local build="$1" start
    [[ -z "$(procfile_command "$build/Procfile" web)" ]] || return 0
    start="$(package_fact start "$build" 2>/dev/null || true)"
    if [[ -n "$start" ]]; then
        echo "$start"
    elif [[ -f "$build/server.js" ]]; then
        echo "node server.js"
    fi
}

# show_start_command BUILD_DIR — says in the staging log what will run.
show_start_command() {
    local cmd
    cmd="$(start_command "$1")"
    if [[ -n "$(procfile_command "$1/Procfile" web)" ]]; then
        topic "Start command: the Procfile's web process"
    elif [[ -n "$cmd" ]]; then
        topic "Start command: $cmd"
    else
        topic "No start command found: add scripts.start to package.json, a server.js or a Procfile"
    fi
}
