/// The two programs a staging container runs, and where things are inside it.
///
/// Layout inside the container (the stager prepares it; see ``StagingHost``):
///
/// | path | what | access |
/// |---|---|---|
/// | `/tmp/app` | the package, extracted (BUILD_DIR) | vcap, read-write |
/// | `/tmp/cache/<key>` | one cache directory per buildpack, restored from the app's cache | vcap, read-write |
/// | `/tmp/deps/<index>` | what suppliers write (DEPS_DIR + index) | vcap, read-write |
/// | `/tmp/env` | one file per app environment variable (Heroku's ENV_DIR) | read-only |
/// | `/tmp/buildpacks/<index>` | each buildpack's checkout | read-only bind |
/// | `/tmp/lifecycle` | these scripts, the plan and `staging_info.yml` | read-only bind |
/// | `/tmp/output` | what the stager reads back: results, droplet, cache | vcap, read-write bind |
///
/// The plan (`/tmp/lifecycle/plan`) has one line per buildpack: index, cache key and name,
/// separated by tabs. Everything the buildpacks print goes to the container's stdout and
/// stderr, which the shim turns into the staging log.
enum Lifecycle {
    /// Exit statuses of the builder, as CF's buildpack lifecycle uses them.
    static let detectFailed: Int = 222
    static let compileFailed: Int = 223
    static let releaseFailed: Int = 224
    static let supplyFailed: Int = 225

    /// Largest `bin/release` output read back (bytes); more is a release failure.
    static let maxReleaseBytes = 1 << 20
    /// Largest Procfile read back (bytes).
    static let maxProcfileBytes = 64 << 10
    /// Largest detect output kept (bytes).
    static let maxDetectBytes = 4096

    /// Phase one: detect (or take the named buildpacks), supply, finalize or compile, release.
    /// `$1` is `detect` or `named`. Writes `/tmp/output/detected` (the winning index),
    /// `detect-<i>` (detect's stdout), `release.yml`, `Procfile` (a copy of the app's, if any)
    /// and `failure` (one line) before a non-zero exit.
    static let builder = #"""
        #!/bin/bash
        # cf-like staging: runs the buildpacks against /tmp/app.
        set -uo pipefail
        mode=$1
        app=/tmp/app deps=/tmp/deps cache=/tmp/cache out=/tmp/output env_dir=/tmp/env
        fail() { local code=$1; shift; printf '%s\n' "$*" > "$out/failure"; printf -- '-----> %s\n' "$*" >&2; exit "$code"; }

        mapfile -t entries < /tmp/lifecycle/plan
        run=()
        if [[ $mode == detect ]]; then
          for entry in "${entries[@]}"; do
            IFS=$'\t' read -r i key name <<< "$entry"
            bp=/tmp/buildpacks/$i
            if [[ ! -x $bp/bin/detect ]]; then
              printf -- '-----> Buildpack %s has no executable bin/detect: skipped\n' "$name" >&2
              continue
            fi
            if "$bp/bin/detect" "$app" < /dev/null > "$out/detect-$i"; then
              run=("$entry")
              printf '%s\n' "$i" > "$out/detected"
              break
            fi
          done
          (( ${#run[@]} > 0 )) || fail 222 "None of the buildpacks detected a compatible application"
        else
          run=("${entries[@]}")
        fi

        last=$(( ${#run[@]} - 1 ))
        for n in "${!run[@]}"; do
          IFS=$'\t' read -r i key name <<< "${run[$n]}"
          bp=/tmp/buildpacks/$i
          mkdir -p "$cache/$key" "$deps/$i" || fail 225 "Cannot create the directories of buildpack $name"
          if (( n < last )); then
            [[ -x $bp/bin/supply ]] || fail 225 "Buildpack $name cannot come before the last buildpack: it has no bin/supply"
            printf -- '-----> Supplying with %s\n' "$name"
            "$bp/bin/supply" "$app" "$cache/$key" "$deps" "$i" < /dev/null || fail 225 "Buildpack $name failed in bin/supply (exit status $?)"
            if [[ -d $deps/$i/bin ]]; then PATH=$deps/$i/bin:$PATH; fi
            if [[ -d $deps/$i/lib ]]; then export LD_LIBRARY_PATH=$deps/$i/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; fi
            continue
          fi
          printf -- '-----> Building with %s\n' "$name"
          if [[ -x $bp/bin/finalize ]]; then
            if [[ -x $bp/bin/supply ]]; then
              "$bp/bin/supply" "$app" "$cache/$key" "$deps" "$i" < /dev/null || fail 225 "Buildpack $name failed in bin/supply (exit status $?)"
            fi
            "$bp/bin/finalize" "$app" "$cache/$key" "$deps" "$i" < /dev/null || fail 223 "Buildpack $name failed in bin/finalize (exit status $?)"
          elif [[ -x $bp/bin/compile ]]; then
            "$bp/bin/compile" "$app" "$cache/$key" "$env_dir" < /dev/null || fail 223 "Buildpack $name failed in bin/compile (exit status $?)"
          else
            fail 223 "Buildpack $name has neither bin/finalize nor bin/compile"
          fi
          [[ -x $bp/bin/release ]] || fail 224 "Buildpack $name has no bin/release"
          "$bp/bin/release" "$app" < /dev/null | head -c 1048577 > "$out/release.yml"
          status=("${PIPESTATUS[@]}")
          (( status[0] == 0 )) || fail 224 "Buildpack $name failed in bin/release (exit status ${status[0]})"
        done
        if [[ -f $app/Procfile ]]; then head -c 65536 "$app/Procfile" > "$out/Procfile"; fi
        exit 0
        """#

    /// Phase two: lays the droplet out (`app/`, `deps/`, `tmp/`, `logs/`, `profile.d/`,
    /// `staging_info.yml`) and packs it and the cache as tar.gz into `/tmp/output`. Runs as
    /// vcap inside the container, so no link the buildpacks left can point the packer at the
    /// host; tar stores links as links.
    static let packer = #"""
        #!/bin/bash
        # cf-like staging: packs the droplet and the buildpack cache.
        set -euo pipefail
        out=/tmp/output d=/tmp/droplet
        rm -rf "$d"
        mkdir -p "$d/tmp" "$d/logs" "$d/profile.d"
        mv /tmp/app "$d/app"
        if [[ -d /tmp/deps ]]; then mv /tmp/deps "$d/deps"; else mkdir "$d/deps"; fi
        {
          echo 'export DEPS_DIR=/home/vcap/deps'
          for dir in "$d"/deps/*/; do
            [[ -d $dir ]] || continue
            i=$(basename "$dir")
            if [[ -d $dir/bin ]]; then echo "export PATH=/home/vcap/deps/$i/bin:\$PATH"; fi
            if [[ -d $dir/lib ]]; then echo "export LD_LIBRARY_PATH=/home/vcap/deps/$i/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"; fi
          done
        } > "$d/profile.d/000_multi-supply.sh"
        for f in "$d"/deps/*/profile.d/*.sh; do
          [[ -f $f ]] || continue
          i=$(basename "$(dirname "$(dirname "$f")")")
          cp "$f" "$d/profile.d/${i}_$(basename "$f")"
        done
        cp /tmp/lifecycle/staging_info.yml "$d/staging_info.yml"
        tar -C "$d" -cf - . | gzip -1 > "$out/droplet.tgz"
        if [[ -d /tmp/cache ]] && [[ -n $(find /tmp/cache -mindepth 2 -print -quit) ]]; then
          tar -C /tmp/cache -cf - . | gzip -1 > "$out/cache.tgz"
        fi
        """#
}
