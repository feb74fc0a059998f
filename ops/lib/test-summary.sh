#!/usr/bin/env bash
# How ops/test reads swift test's output: counts, the tests that never finished, and the
# closing counts of a run that was stopped or crashed. Sourced by ops/test and checked by
# ops/tests/test-summary.

# Reads swift test's output and prints "PASSED FAILED", or nothing if no
# result could be found.
count_results() {
    sed -e 's/\x1b\[[0-9;]*m//g' "$1" | awk '
        # XCTest: one line per test case.
        /^Test Case .* passed \(/ { xp++; xseen = 1; next }
        /^Test Case .* failed \(/ { xf++; xseen = 1; next }
        /^[[:space:]]*Executed [0-9]+ tests?, with [0-9]+ failures?/ {
            xexec = $2; xfails = $5; xexec_seen = 1; next
        }
        # Swift Testing: the run summary, then one line per test.
        / Test run with [0-9]+ tests?/ {
            for (i = 1; i <= NF; i++) if ($i == "with") { sn = $(i + 1); break }
            sresult = ($0 ~ / passed after /) ? "passed" : "failed"
            sseen = 1; next
        }
        / Test .* passed after [0-9.]+ seconds/ { sp++; stests = 1; next }
        / Test .* failed after [0-9.]+ seconds/ { sf++; stests = 1; next }
        END {
            passed = 0; failed = 0; found = 0
            if (xseen) { passed += xp; failed += xf; found = 1 }
            else if (xexec_seen) {
                f = (xfails > xexec) ? xexec : xfails
                passed += xexec - f; failed += f; found = 1
            }
            if (stests) { passed += sp; failed += sf; found = 1 }
            else if (sseen && sresult == "passed") { passed += sn; found = 1 }
            if (found) printf "%d %d\n", passed, failed
        }'
}

# Prints the tests that started and never finished (one per line) in swift test's output.
unfinished_tests() {
    sed -e 's/\x1b\[[0-9;]*m//g' "$1" | awk -f "$(dirname "${BASH_SOURCE[0]}")/test-results.awk"
}

# Prints "PASSED FAILED" for swift test's output in LOG, given the status swift test exited
# with: every test that started and never finished counts as failed, and a run that failed
# with no failing test named (it died between tests, or before any result was printed) counts
# as one failure. Prints nothing only for a run that succeeded without printing any result.
swift_counts() {  # swift_counts LOG STATUS
    local log="$1" status="$2" counts passed=0 failed=0 never=0 unfinished
    counts="$(count_results "$log")"
    [[ -n "$counts" || $status -ne 0 ]] || return 0
    [[ -z "$counts" ]] || read -r passed failed <<<"$counts"
    unfinished="$(unfinished_tests "$log")"
    [[ -z "$unfinished" ]] || never=$(wc -l <<<"$unfinished")
    failed=$(( failed + never ))
    if [[ $status -ne 0 && $failed -eq 0 ]]; then failed=1; fi
    echo "$passed $failed"
}
