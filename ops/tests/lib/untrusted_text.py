#!/usr/bin/env python3
"""Checks that app and buildpack text reached its readers cleaned (UntrustedText), for the
end-to-end suites.

  untrusted_text.py alerts FILE NAME:APP_GUID[:MARKERS]...
      FILE ('-': stdin) is a JSON list of alerts, as `cf-like-admin alerts --json` prints them
      or as Alertmanager's GET /api/v2/alerts answers (told apart by their shape). For each
      NAME:APP_GUID there must be exactly one active alert of that name about that app; its
      labels hold no control character at all, its annotations none but newline and tab (they
      are multi-line). MARKERS (all, some or none; default none) asks for the marker words of
      ops/tests/fixtures/poison/poison.py in its annotations: every one, or at least one. So
      poisoned text is shown to be cleaned, not dropped.
  untrusted_text.py id FILE NAME:APP_GUID
      Prints the id of that active alert (controller JSON).
  untrusted_text.py terminal FILE [all|some|none]
      FILE is what a CLI printed for a terminal: valid UTF-8 with no ESC, NUL or other control
      character but newline and tab; and the markers, as above.

Prints what it found; exits 1 naming the first thing that is wrong.
"""
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ left in the fixtures directory
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "poison"))
from poison import MARKERS  # noqa: E402


class Failure(Exception):
    pass


def controls(text, multi_line):
    """The control characters of text a reader should never get, as U+XXXX names."""
    bad = []
    for ch in text:
        code = ord(ch)
        if multi_line and ch in "\n\t":
            continue
        if code < 0x20 or 0x7F <= code <= 0x9F:
            bad.append("U+%04X" % code)
    return bad


def check_markers(text, want, where):
    found = [m for m in MARKERS if m in text]
    if want == "all" and len(found) != len(MARKERS):
        missing = [m for m in MARKERS if m not in found]
        raise Failure("%s: markers missing (dropped instead of cleaned?): %s" % (where, missing))
    if want == "some" and not found:
        raise Failure("%s: none of the poison markers %s" % (where, MARKERS))
    return found


def read_json(path):
    data = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    alerts = json.loads(data)
    if not isinstance(alerts, list):
        raise Failure("expected a JSON list of alerts, got %s" % type(alerts).__name__)
    return alerts


def normalised(alert):
    """(source, name, app guid, active, id, labels, annotations) of either shape."""
    if isinstance(alert.get("status"), dict):  # Alertmanager API v2
        labels = alert.get("labels", {})
        return ("alertmanager", labels.get("alertname"), labels.get("app_guid"),
                alert["status"].get("state") == "active", alert.get("fingerprint"), labels, alert.get("annotations", {}))
    labels = alert.get("labels", {})
    return ("controller", alert.get("name"), alert.get("app_guid") or labels.get("app_guid"),
            alert.get("state") == "active", alert.get("id"), labels, alert.get("annotations", {}))


def wanted(spec):
    parts = spec.split(":")
    if len(parts) not in (2, 3) or parts[-1] not in ("all", "some", "none") and len(parts) == 3:
        raise Failure("bad alert spec %r (NAME:APP_GUID[:all|some|none])" % spec)
    return parts[0], parts[1], parts[2] if len(parts) == 3 else "none"


def find(alerts, name, app):
    hits = [normalised(a) for a in alerts]
    hits = [h for h in hits if h[1] == name and (h[2] or "").lower() == app.lower() and h[3]]
    if len(hits) != 1:
        raise Failure("%d active %s alerts about app %s (want exactly 1)" % (len(hits), name, app))
    return hits[0]


def check_alerts(path, specs):
    alerts = read_json(path)
    for spec in specs:
        name, app, markers = wanted(spec)
        source, _, _, _, ident, labels, annotations = find(alerts, name, app)
        where = "%s %s alert %s about %s" % (source, name, ident, app)
        for key, value in labels.items():
            bad = controls(key, False) + controls(value, False)
            if bad:
                raise Failure("%s: label %s holds control characters %s: %r" % (where, key, bad, value[:200]))
        for key, value in annotations.items():
            bad = controls(key, False) + controls(value, True)
            if bad:
                raise Failure("%s: annotation %s holds control characters %s: %r" % (where, key, bad, value[:200]))
        found = check_markers("\n".join(annotations.values()), markers, where)
        print("%s: active, %d labels and %d annotations clean, %d/%d poison markers" %
              (where, len(labels), len(annotations), len(found), len(MARKERS)))


def print_id(path, spec):
    name, app, _ = wanted(spec)
    hit = find(read_json(path), name, app)
    if hit[0] != "controller":
        raise Failure("ids are the controller's: give cf-like-admin alerts --json")
    print(hit[4])


def check_terminal(path, markers):
    data = open(path, "rb").read()
    for byte, what in ((0x1B, "ESC"), (0x00, "NUL")):
        at = data.find(bytes([byte]))
        if at >= 0:
            raise Failure("%s: raw %s byte at offset %d: %r" % (path, what, at, data[max(0, at - 40):at + 40]))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Failure("%s: not valid UTF-8 (%s)" % (path, e))
    bad = controls(text, True)
    if bad:
        raise Failure("%s: control characters %s" % (path, sorted(set(bad))))
    found = check_markers(text, markers, path)
    print("%s: %d bytes, no ESC, NUL or other control character, %d/%d poison markers" %
          (path, len(data), len(found), len(MARKERS)))


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    mode, path, rest = argv[1], argv[2], argv[3:]
    try:
        if mode == "alerts" and rest:
            check_alerts(path, rest)
        elif mode == "id" and len(rest) == 1:
            print_id(path, rest[0])
        elif mode == "terminal" and len(rest) <= 1 and (not rest or rest[0] in ("all", "some", "none")):
            check_terminal(path, rest[0] if rest else "none")
        else:
            print(__doc__.strip(), file=sys.stderr)
            return 2
    except Failure as failure:
        print("untrusted_text: %s" % failure)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
