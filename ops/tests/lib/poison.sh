# shellcheck shell=bash
# The poisoned buildpack and app of ops/tests/fixtures/poison, laid out for a suite (sourced).

POISON_FIXTURES="$(cd "$(dirname "${BASH_SOURCE[0]}")/../fixtures/poison" && pwd -P)"

# poison_buildpack_repository DIR: DIR becomes a git repository (branch main) holding the
# poison buildpack and poison.py, for `cf-like-admin create-buildpack NAME file://DIR#main`.
poison_buildpack_repository() {
    local repo="$1"
    rm -rf "$repo" && mkdir -p "$repo" || return 1
    cp -r "$POISON_FIXTURES/buildpack/." "$repo/" && cp "$POISON_FIXTURES/poison.py" "$repo/" || return 1
    git init -q -b main "$repo" && git -C "$repo" add -A &&
        git -C "$repo" -c user.email=tests@cf-like.invalid -c user.name=tests commit -q -m "poison buildpack"
}

# poison_crash_app DIR: an app (Procfile, run by the binary buildpack) that prints the poison
# and exits 3 on every start.
poison_crash_app() {
    rm -rf "$1" && mkdir -p "$1" || return 1
    cp "$POISON_FIXTURES/app/Procfile" "$POISON_FIXTURES/poison.py" "$1/"
}

# The app only the poison buildpack detects (it fails staging with the poison).
POISON_STAGING_APP="$POISON_FIXTURES/stage-app"
