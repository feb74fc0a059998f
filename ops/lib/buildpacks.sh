# shellcheck shell=bash
# The shipped buildpacks as admin buildpacks: each buildpacks/<name> becomes a local git
# repository (its fixtures left out) that the controller knows by a file:// URL, so the stager
# fetches it through the same git path as any other buildpack. Sourced by ops/up and tests.

# The shipped buildpacks in detect order (binary detects only a Procfile: it stays last).
SHIPPED_BUILDPACKS=(staticfile python nodejs binary)

# buildpack_repositories REPOS_DIR — (re)creates REPOS_DIR/<name> as a git repository holding
# the current buildpacks/<name>; a new commit only when the files changed.
buildpack_repositories() {
    local repos="$1" name src repo
    mkdir -p "$repos"
    for name in "${SHIPPED_BUILDPACKS[@]}"; do
        src="$REPO_ROOT/buildpacks/$name"
        repo="$repos/$name"
        [[ -d "$src/bin" ]] || { echo "buildpack $name missing at $src" >&2; return 1; }
        [[ -d "$repo/.git" ]] || git init -q -b main "$repo"
        find "$repo" -mindepth 1 -maxdepth 1 ! -name .git -exec rm -rf {} +
        (cd "$src" && tar --exclude=./fixtures --exclude=./testdata -cf - .) | tar -C "$repo" -xf -
        git -C "$repo" add -A
        if ! git -C "$repo" diff --cached --quiet 2>/dev/null || ! git -C "$repo" rev-parse -q --verify HEAD >/dev/null; then
            git -C "$repo" -c user.email=ops@cf-like.invalid -c user.name=cf-like \
                commit -q -m "buildpack $name from the cf-like repository" || return 1
        fi
    done
}

# register_buildpacks API TOKEN REPOS_DIR — creates each shipped buildpack at its position, or
# points an existing one of that name at its repository again. Prints one line per buildpack.
register_buildpacks() {
    local api="$1" token="$2" repos="$3" name position=0 existing body code
    for name in "${SHIPPED_BUILDPACKS[@]}"; do
        position=$((position + 1))
        existing="$(curl -fsS -H "Authorization: bearer $token" "$api/v3/buildpacks?names=$name" |
            python3 -c 'import json,sys; r=json.load(sys.stdin)["resources"]; print(r[0]["guid"] if r else "")')" || return 1
        body="{\"name\":\"$name\",\"url\":\"file://$repos/$name\",\"position\":$position}"
        if [[ -z "$existing" ]]; then
            code="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: bearer $token" -H 'Content-Type: application/json' \
                -X POST "$api/v3/buildpacks" -d "$body")"
        else
            code="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: bearer $token" -H 'Content-Type: application/json' \
                -X PATCH "$api/v3/buildpacks/$existing" -d "{\"url\":\"file://$repos/$name\"}")"
        fi
        [[ "$code" == 201 || "$code" == 200 ]] || { echo "registering buildpack $name failed: HTTP $code" >&2; return 1; }
        echo "buildpack $name (position $position): file://$repos/$name"
    done
}
