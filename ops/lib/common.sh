# shellcheck shell=bash
# Shared helpers for the ops/ scripts. Source it; do not run it.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
#
# Sets:
#   REPO_ROOT             the repository root (found from this file's location)
#   CONFIG_FILE           the platform config file (env OPS_CONFIG; default <repo>/config/cf-like.yaml)
#   CFLIKE_PLATFORM_HOME  where var/ lives (default: the parent of the config file's directory)
#   VAR_DIR, SECRETS_DIR  <home>/var and <home>/var/secrets
#   CFLIKE_POSTGRES_PORT  the private cluster's port (default: 54320)
# Only CFLIKE_PLATFORM_HOME and CFLIKE_POSTGRES_PORT are exported: the server
# reads every CFLIKE_<SECTION>_<KEY> variable as a config override, so the
# scripts' own variables stay out of that namespace.

if [[ -n "${_CFLIKE_COMMON_SH:-}" ]]; then
    return 0
fi
_CFLIKE_COMMON_SH=1

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"

# The calling script's name (e.g. ops/up), used as the prefix of every message.
if [[ -z "${SCRIPT_NAME:-}" ]]; then
    SCRIPT_NAME="$(realpath --relative-to="$REPO_ROOT" "$0" 2>/dev/null || true)"
    [[ -n "$SCRIPT_NAME" && "$SCRIPT_NAME" != ../* ]] || SCRIPT_NAME="$(basename "$0")"
fi
CONFIG_FILE="${OPS_CONFIG:-$REPO_ROOT/config/cf-like.yaml}"

# config_value SECTION KEY — prints a scalar of the two-level YAML config file
# (empty when the file or the key is missing). Environment overrides are the
# caller's business.
config_value() {
    [[ -f "$CONFIG_FILE" ]] || return 0
    awk -v want_section="$1" -v want_key="$2" '
        /^[^[:space:]#][^:]*:/ { section = $0; sub(/:.*/, "", section); next }
        section == want_section && $0 ~ "^[[:space:]]+" want_key ":" {
            v = $0
            sub("^[[:space:]]+" want_key ":[[:space:]]*", "", v)
            if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v) }
            else if (v ~ /^\x27/) { sub(/^\x27/, "", v); sub(/\x27.*$/, "", v) }
            else { sub(/[[:space:]]+#.*$/, "", v); sub(/[[:space:]]+$/, "", v) }
            print v; exit
        }' "$CONFIG_FILE"
}

# The platform home, as the server computes it: CFLIKE_PLATFORM_HOME, else
# platform.home of the config file, else the parent of the config file's
# directory; a relative value resolves against that parent.
_default_home="$(cd "$(dirname "$CONFIG_FILE")/.." 2>/dev/null && pwd -P || echo "$REPO_ROOT")"
if [[ -z "${CFLIKE_PLATFORM_HOME:-}" ]]; then
    CFLIKE_PLATFORM_HOME="$(config_value platform home)"
fi
if [[ -z "$CFLIKE_PLATFORM_HOME" ]]; then
    CFLIKE_PLATFORM_HOME="$_default_home"
elif [[ "$CFLIKE_PLATFORM_HOME" != /* ]]; then
    CFLIKE_PLATFORM_HOME="$(realpath -m "$_default_home/$CFLIKE_PLATFORM_HOME")"
fi
unset _default_home
if [[ -z "${CFLIKE_POSTGRES_PORT:-}" ]]; then
    CFLIKE_POSTGRES_PORT="$(config_value postgres port)"
    : "${CFLIKE_POSTGRES_PORT:=54320}"
fi
export CFLIKE_PLATFORM_HOME CFLIKE_POSTGRES_PORT
VAR_DIR="$CFLIKE_PLATFORM_HOME/var"
SECRETS_DIR="$VAR_DIR/secrets"

# ---------------------------------------------------------------- logging

if [[ -t 2 && -z "${NO_COLOR:-}" ]]; then
    _c_red=$'\e[31m'; _c_yel=$'\e[33m'; _c_bold=$'\e[1m'; _c_off=$'\e[0m'
else
    _c_red=''; _c_yel=''; _c_bold=''; _c_off=''
fi

# All messages go to stderr so that functions can print results on stdout.
log()  { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
step() { printf '%s: %s==> %s%s\n' "$SCRIPT_NAME" "$_c_bold" "$*" "$_c_off" >&2; }
warn() { printf '%s: %swarning:%s %s\n' "$SCRIPT_NAME" "$_c_yel" "$_c_off" "$*" >&2; }
err()  { printf '%s: %serror:%s %s\n' "$SCRIPT_NAME" "$_c_red" "$_c_off" "$*" >&2; }
die()  { err "$*"; exit 1; }

# ---------------------------------------------------------------- checks

need_root() {
    if [[ "$(id -u)" -ne 0 ]]; then
        die "must run as root (try: sudo $0)"
    fi
}

have() { command -v "$1" >/dev/null 2>&1; }

need_cmd() {
    local c
    for c in "$@"; do
        have "$c" || die "required command not found: $c"
    done
}

# Puts the Swift toolchain on PATH if `swift` is not there yet.
ensure_swift_on_path() {
    if ! have swift; then
        local d
        for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
            if [[ -x "$d/swift" ]]; then
                export PATH="$d:$PATH"
                break
            fi
        done
    fi
    have swift || die "swift not found (looked on PATH and in /opt/swift/usr/bin)"
}

# ---------------------------------------------------------------- packages

# Prints the package names of a list file (comments and blank lines removed).
read_package_list() {
    sed -e 's/#.*//' -e 's/[[:space:]]\+/\n/g' "$1" | sed '/^$/d'
}

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# install_packages PKG... — installs the missing ones with apt-get.
install_packages() {
    local p missing=()
    for p in "$@"; do
        package_installed "$p" || missing+=("$p")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        log "system packages: all ${#} present"
        return 0
    fi
    need_cmd apt-get
    step "installing ${#missing[@]} missing package(s): ${missing[*]}"
    # Keep package installs from starting the distribution's own services
    # (its PostgreSQL cluster, supervisord, nginx): the platform runs its own.
    local policy=/usr/sbin/policy-rc.d created_policy=0
    if [[ ! -e "$policy" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        created_policy=1
    fi
    local rc=0
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    } </dev/null >&2 || rc=$?
    if [[ $created_policy -eq 1 ]]; then
        rm -f "$policy"
    fi
    [[ $rc -eq 0 ]] || die "apt-get failed (exit $rc)"
}

# install_package_file FILE — installs the missing packages listed in FILE.
install_package_file() {
    local pkgs
    mapfile -t pkgs < <(read_package_list "$1")
    install_packages "${pkgs[@]}"
}

# ---------------------------------------------------------------- secrets

# Prints a random alphanumeric string of N characters (default 32). Safe in
# URLs, form bodies, libpq passfiles and shell words.
random_token() {
    local n="${1:-32}" s=""
    while [[ ${#s} -lt $n ]]; do
        s+="$(head -c 96 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')"
    done
    printf '%s' "${s:0:$n}"
}

# Prints N random bytes (default 64) as base64 text on one line.
random_base64() {
    head -c "${1:-64}" /dev/urandom | base64 -w0
}

# write_secret FILE CONTENT — creates FILE with mode 0600 (never overwrites).
write_secret() {
    local file="$1" content="$2" tmp
    [[ -e "$file" ]] && return 0
    mkdir -p "$(dirname "$file")"
    tmp="$(mktemp "$file.XXXXXX")"
    chmod 0600 "$tmp"
    printf '%s\n' "$content" >"$tmp"
    mv -n "$tmp" "$file"
    rm -f "$tmp"
    log "created $(relpath "$file") (0600)"
}

# Creates the database password and the libpq passfile if missing.
ensure_db_secrets() {
    mkdir -p "$SECRETS_DIR"
    chmod 0700 "$SECRETS_DIR"
    write_secret "$SECRETS_DIR/db-password" "$(random_token 32)"
    local pw
    pw="$(head -n1 "$SECRETS_DIR/db-password")"
    write_secret "$SECRETS_DIR/pgpass" "*:*:*:cflike:$pw"
    chmod 0600 "$SECRETS_DIR/db-password" "$SECRETS_DIR/pgpass"
}

# Creates every secret the platform reads, if missing. Never overwrites.
ensure_secrets() {
    ensure_db_secrets
    write_secret "$SECRETS_DIR/token-signing-key" "$(random_base64 64)"
    write_secret "$SECRETS_DIR/internal-credential" "$(random_token 48)"
    chmod 0600 "$SECRETS_DIR"/*
}

# Creates the var/ layout.
ensure_var_layout() {
    mkdir -p "$VAR_DIR"/{log,run,blobstore,supervisor} "$SECRETS_DIR"
    chmod 0700 "$SECRETS_DIR"
}

# ---------------------------------------------------------------- misc

# Prints PATH relative to the platform home when it lies inside it.
relpath() {
    local p="$1"
    case "$p" in
        "$CFLIKE_PLATFORM_HOME"/*) printf '%s' "${p#"$CFLIKE_PLATFORM_HOME"/}" ;;
        *) printf '%s' "$p" ;;
    esac
}

# wait_http URL TIMEOUT_SECONDS — waits until URL answers 2xx.
wait_http() {
    local url="$1" timeout="${2:-60}" deadline
    deadline=$(( SECONDS + timeout ))
    while (( SECONDS < deadline )); do
        if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# wait_for CMD... — retries CMD every 0.2 s for up to WAIT_TIMEOUT seconds (default 30).
wait_for() {
    local deadline=$(( SECONDS + ${WAIT_TIMEOUT:-30} ))
    while (( SECONDS < deadline )); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}

# Is PID alive?
pid_alive() {
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null
}

# The controller's listen address (host:port): env, then the config file, then the default.
controller_listen() {
    if [[ -n "${CFLIKE_CONTROLLER_LISTEN:-}" ]]; then
        printf '%s' "$CFLIKE_CONTROLLER_LISTEN"
        return
    fi
    local v
    v="$(config_value controller listen)"
    printf '%s' "${v:-127.0.0.1:9022}"
}

# The controller's base URL, e.g. http://127.0.0.1:9022 (0.0.0.0 becomes 127.0.0.1).
controller_url() {
    local l
    l="$(controller_listen)"
    l="${l/#0.0.0.0:/127.0.0.1:}"
    l="${l/#\[::\]:/127.0.0.1:}"
    printf 'http://%s' "$l"
}
