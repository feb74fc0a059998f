#!/usr/bin/env python3
"""What an execution agent left on the host for one app, for the end-to-end suites.

  agent_host.py --state DIR --app GUID --prefix PREFIX --pool N --expect K

DIR is the agent's state directory (runc state in DIR/runc, instance records in
DIR/instances/GUID/record.json), PREFIX its dea.interface_prefix and N its
dea.network_pool_size. Holds (exit 0) when the host has exactly K containers, all running and
all the app's; each one's network namespace and veth (named in its record) exist; K root file
systems are mounted under DIR/instances; and the namespaces named like the agent's beyond
those are no more than the pool's N ready ones. Prints one line saying what it found and, when
something does not hold, what.
"""
import argparse
import json
import os
import re
import subprocess
import sys


def containers(state):
    out = subprocess.run(["runc", "--root", os.path.join(state, "runc"), "list", "-f", "json"],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SystemExit("runc list failed: %s" % out.stderr.strip())
    return json.loads(out.stdout or "null") or []


def record_of(state, container_id):
    guid = container_id[len("cfl-"):] if container_id.startswith("cfl-") else container_id
    try:
        with open(os.path.join(state, "instances", guid, "record.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--state", required=True)
    parser.add_argument("--app", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--pool", type=int, required=True)
    parser.add_argument("--expect", type=int, required=True)
    args = parser.parse_args()

    wrong = []
    listed = containers(args.state)
    running = [c for c in listed if c.get("status") == "running"]
    of_app = [c for c in listed if (c.get("annotations") or {}).get("cf-like.app-guid") == args.app]
    if not (len(listed) == len(running) == len(of_app) == args.expect):
        wrong.append("want %d containers, all running and the app's" % args.expect)

    in_use = set()
    for c in listed:
        record = record_of(args.state, c["id"])
        attachment = (record or {}).get("attachment") or {}
        namespace, veth = attachment.get("namespaceName"), attachment.get("hostInterface")
        if not namespace or not veth:
            wrong.append("%s has no network attachment in its record" % c["id"])
            continue
        in_use.add(namespace)
        if not os.path.exists(os.path.join("/var/run/netns", namespace)):
            wrong.append("%s: its namespace %s is gone" % (c["id"], namespace))
        if not os.path.exists(os.path.join("/sys/class/net", veth)):
            wrong.append("%s: its veth %s is gone" % (c["id"], veth))

    ours = re.compile(re.escape(args.prefix) + r"[0-9]+$")
    namespaces = sorted(n for n in os.listdir("/var/run/netns") if ours.match(n)) if os.path.isdir("/var/run/netns") else []
    extra = [n for n in namespaces if n not in in_use]
    if len(extra) > args.pool:
        wrong.append("%d namespaces beyond the containers' (%s), more than the pool's %d" % (len(extra), " ".join(extra), args.pool))

    root = os.path.join(args.state, "instances") + "/"
    with open("/proc/mounts") as f:
        mounts = sum(1 for line in f if len(line.split()) > 1 and line.split()[1].startswith(root))
    if mounts != args.expect:
        wrong.append("want %d root file systems mounted, found %d" % (args.expect, mounts))

    print("containers %d (running %d, of the app %d); namespaces %d (in use %d, pooled or left over %d); mounts %d%s" %
          (len(listed), len(running), len(of_app), len(namespaces), len(in_use & set(namespaces)), len(extra), mounts,
           "" if not wrong else "; wrong: " + "; ".join(wrong)))
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
