# shellcheck shell=bash
# The staticfile buildpack's staging work.

# staticfile_option BUILD_DIR KEY — the value of KEY in the app's Staticfile (empty if unset).
staticfile_option() {
    [[ -f "$1/Staticfile" ]] || return 0
    sed -n -E "s/^[[:space:]]*$2[[:space:]]*:[[:space:]]*//p" "$1/Staticfile" | head -n 1 |
        sed -E -e 's/[[:space:]]+#.*$//' -e 's/[[:space:]]+$//' -e "s/^['\"](.*)['\"]\$/\\1/"
}

# install_server BUILD_DIR — refuses a root outside the app, then copies the server into
# BUILD_DIR/.staticfile (it reads the Staticfile again when it starts).
install_server() {
    local build="$1" root real_build real_root
    root="$(staticfile_option "$build" root)"
    root="${root:-.}"
    [[ -d "$build/$root" ]] || fail "Staticfile: root '$root' is not a directory of the app"
    real_build="$(realpath "$build")"
    real_root="$(realpath "$build/$root")"
    [[ "$real_root" == "$real_build" || "$real_root" == "$real_build"/* ]] ||
        fail "Staticfile: root '$root' lies outside the app"

    local shown="$root/"
    [[ "$root" != . ]] || shown="the app directory"
    topic "Static site: serving $shown with python3 http.server"
    [[ -f "$real_root/index.html" ]] || info "warning: no index.html in $root"
    if [[ "$(staticfile_option "$build" directory)" == visible ]]; then
        info "directory listings: on"
    else
        info "directory listings: off (set 'directory: visible' in the Staticfile to list)"
    fi
    mkdir -p "$build/.staticfile"
    install -m 0755 "$BP_DIR/lib/server.py" "$build/.staticfile/server.py"
}
