# Reads swift test's output (colour codes already removed) and prints the tests that started
# but never finished, one per line: a hung or crashed run names them here.
#   XCTest:        Test Case '-[Suite test]' started.   ... passed (0.1 seconds). / failed (...)
#   Swift Testing: ◇ Test name() started.               ✔ Test name() passed after ... / ✘ ... failed after ...
function xname(line) {
    sub(/^.*Test Case '/, "", line); sub(/'.*$/, "", line); return line
}
function sname(line, word) {
    sub(/^[^T]*Test /, "", line); sub(" " word ".*$", "", line)
    sub(/ with [0-9]+ test cases?$/, "", line)   # a parameterised test's closing line
    return line
}
/^Test Case '.*' started\./                { started["x:" xname($0)] = xname($0); order[++n] = "x:" xname($0); next }
/^Test Case '.*' (passed|failed) \(/       { done["x:" xname($0)] = 1; next }
/ Test run started\.$/                     { next }
/ Test case passing /                      { next }   # one argument of a parameterised test
/ Test .* started\.$/                      { k = "s:" sname($0, "started"); started[k] = sname($0, "started"); order[++n] = k; next }
/ Test .* passed after [0-9.]+ seconds/    { done["s:" sname($0, "passed after")] = 1; next }
/ Test .* failed after [0-9.]+ seconds/    { done["s:" sname($0, "failed after")] = 1; next }
/ Test .* skipped/                         { done["s:" sname($0, "skipped")] = 1; next }
END {
    for (i = 1; i <= n; i++) {
        k = order[i]
        if (!(k in done) && !(k in printed)) { print started[k]; printed[k] = 1 }
    }
}
