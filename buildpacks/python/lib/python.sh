# shellcheck shell=bash
# The python buildpack's staging work, shared by its bin/ scripts.

# check_python BUILD_DIR — the stack's python3, and its pip when there is something to install.
check_python() {
    command -v python3 >/dev/null || fail "python3 is not on this stack"
    topic "Using $(python3 --version 2>&1) from the stack"
    if [[ -f "$1/runtime.txt" ]]; then
        info "note: runtime.txt ($(head -n 1 "$1/runtime.txt")) is ignored: the stack has one Python"
    fi
    if [[ -f "$1/requirements.txt" ]] && ! python3 -m pip --version >/dev/null 2>&1; then
        fail "pip is not on this stack (python3 -m pip): cannot install requirements.txt"
    fi
}

# requirements_digest BUILD_DIR — changes whenever pip could install something else.
requirements_digest() {
    (
        cd "$1" || exit 1
        python3 --version
        cat requirements.txt
        if [[ -d vendor ]]; then find vendor -type f -print0 | sort -z | xargs -0 -r sha256sum; fi
    ) 2>&1 | sha256sum | cut -d ' ' -f 1
}

# install_requirements BUILD_DIR CACHE_DIR TARGET — pip install -r requirements.txt --target
# TARGET, offline from vendor/ when the app has one. The installed tree is kept in the cache
# and reused while requirements.txt and vendor/ stay the same; pip's own cache (downloads,
# built wheels) lives there too.
install_requirements() {
    local build="$1" cache="$2" target="$3" digest
    if [[ ! -f "$build/requirements.txt" ]]; then
        topic "No requirements.txt: no packages to install"
        return 0
    fi
    digest="$(requirements_digest "$build")"
    if [[ -d "$cache/python/packages" && "$(cat "$cache/python/digest" 2>/dev/null)" == "$digest" ]]; then
        topic "Reusing the packages of the last staging (requirements.txt and vendor/ unchanged)"
        mkdir -p "$target"
        cp -a "$cache/python/packages/." "$target/"
        return 0
    fi
    local args=(install --requirement requirements.txt --target "$target"
        --disable-pip-version-check --no-input --progress-bar off)
    if [[ -d "$build/vendor" ]]; then
        topic "Installing requirements.txt from vendor/ (offline)"
        args+=(--no-index --find-links vendor)
    else
        topic "Installing requirements.txt with pip"
    fi
    mkdir -p "$cache/python"
    if ! (cd "$build" && PIP_CACHE_DIR="$cache/python/pip" python3 -m pip "${args[@]}") 2>&1 | indent; then
        fail "pip install failed (see above)"
    fi
    rm -rf "$cache/python/packages" "$cache/python/digest"
    cp -a "$target" "$cache/python/packages"
    echo "$digest" >"$cache/python/digest"
}

# write_profile FILE PACKAGES_DIR — a profile.d script putting PACKAGES_DIR (an expression
# evaluated at launch) on PYTHONPATH and its bin/ on PATH, once however often it is sourced.
write_profile() {
    cat >"$1" <<PROFILE
# Python packages installed at staging by the python buildpack.
_python_packages="$2"
case ":\${PYTHONPATH:-}:" in
    *":\$_python_packages:"*) ;;
    *)
        export PYTHONPATH="\$_python_packages\${PYTHONPATH:+:\$PYTHONPATH}"
        export PATH="\$_python_packages/bin:\$PATH"
        ;;
esac
unset _python_packages
export PYTHONUNBUFFERED=1
PROFILE
}

# wsgi_module BUILD_DIR — the gunicorn app argument guessed from the app's files.
wsgi_module() {
    local build="$1" f
    if [[ -f "$build/wsgi.py" ]]; then
        if grep -Eq '^(application[[:space:]]*=|def application\b)' "$build/wsgi.py"; then
            echo "wsgi:application"
        elif grep -Eq '^(app[[:space:]]*=|def app\b)' "$build/wsgi.py"; then
            echo "wsgi:app"
        else
            echo "wsgi"
        fi
        return 0
    fi
    if [[ -f "$build/app.py" ]] && grep -Eq '^app[[:space:]]*=' "$build/app.py"; then
        echo "app:app"
        return 0
    fi
    for f in "$build"/*/wsgi.py; do
        [[ -f "$f" ]] || continue
        f="${f%/wsgi.py}"
        echo "${f##*/}.wsgi"
        return 0
    done
    return 1
}

# start_command BUILD_DIR — the default web command; nothing when the Procfile has a web line.
start_command() {
    local build="$1" module
    [[ -z "$(procfile_command "$build/Procfile" web)" ]] || return 0
    if grep -Eiq '^[[:space:]]*gunicorn([^A-Za-z0-9_.-]|$)' "$build/requirements.txt" 2>/dev/null &&
        module="$(wsgi_module "$build")"; then
        echo "gunicorn --bind 0.0.0.0:\$PORT $module"
    elif [[ -f "$build/app.py" ]]; then
        echo "python3 app.py"
    elif [[ -f "$build/main.py" ]]; then
        echo "python3 main.py"
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
        topic "No start command found: add a Procfile with a web process, or push with -c"
    fi
}
