#!/usr/bin/env python3
"""Finds the processes of one platform home that ops/up and ops/down must deal with.

Run by ops/lib/orphans.sh (as root, so every process's /proc entries are readable):

    orphans.py --home HOME [--supervisor-pid PID] [--lock PATH]... [--listen NAME=HOST:PORT]...

Where it looks: every process's command line, the pid files in HOME/var/run, the holders of
the state-directory locks (/proc/locks) and of the listen ports (/proc/net/tcp*).

A *component of this home* is a process whose command line is `cf-like-server <component>`
(controller, stager, dea, health-manager, router, all) and whose platform home, computed as the
server computes it (CFLIKE_PLATFORM_HOME in its environment, else platform.home of its config
file, else the parent of the config file's directory), is HOME; or whose --pid-file lies in
HOME/var/run. Nothing else is ever reported as one: app containers' shims (cf-like-shim),
PostgreSQL and another home's components never are.

Prints one line per finding, fields separated by tabs:

    orphan   PID COMPONENT REASONS      a component of this home not under the live supervisord
    foreign  PID WHAT      COMMAND      a process that is not a component of this home but holds
                                        one of its state-directory locks or listen ports
"""

import argparse
import os
import socket
import struct
import sys

COMPONENTS = {"controller", "stager", "dea", "health-manager", "router", "all"}
SERVER = "cf-like-server"


def read(path, mode="rb"):
    try:
        with open(path, mode) as f:
            return f.read()
    except OSError:
        return None


def pids():
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def argv_of(pid):
    raw = read(f"/proc/{pid}/cmdline")
    if not raw:
        return []  # a kernel thread, a zombie or a process already gone
    return [part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")]


def environ_of(pid):
    raw = read(f"/proc/{pid}/environ") or b""
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def option(argv, name):
    """The value of --name VALUE or --name=VALUE in argv, else None."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def config_home(config_path):
    """platform.home of a two-level YAML config file, as ops/lib/common.sh reads it."""
    text = read(config_path, "r")
    if text is None:
        return None
    section = None
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#") and ":" in line:
            section = line.split(":", 1)[0].strip()
        elif section == "platform" and line.strip().startswith("home:"):
            value = line.strip()[len("home:"):].split(" #", 1)[0].strip().strip("\"'")
            return value or None
    return None


def home_of(argv, env, cwd):
    """The platform home the server computes for this command line, environment and cwd."""
    config = option(argv, "--config") or env.get("CFLIKE_CONFIG") or "config/cf-like.yaml"
    config = os.path.normpath(os.path.join(cwd, config))
    default_home = os.path.dirname(os.path.dirname(config))
    home = env.get("CFLIKE_PLATFORM_HOME") or config_home(config)
    if not home:
        return os.path.realpath(default_home)
    return os.path.realpath(os.path.join(default_home, home))


def component_of(pid, home):
    """The component name when pid is a component of `home`, else None."""
    argv = argv_of(pid)
    if len(argv) < 2 or os.path.basename(argv[0]) != SERVER or argv[1] not in COMPONENTS:
        return None
    cwd = os.path.realpath(f"/proc/{pid}/cwd")
    pid_file = option(argv, "--pid-file")
    run_dir = os.path.join(home, "var", "run") + os.sep
    if pid_file and os.path.realpath(os.path.join(cwd, pid_file)).startswith(run_dir):
        return argv[1]
    return argv[1] if home_of(argv, environ_of(pid), cwd) == home else None


def parent_of(pid):
    stat = read(f"/proc/{pid}/stat", "r")
    if not stat:
        return 0
    # Field 4, after the command name in parentheses (which may itself hold spaces).
    return int(stat.rsplit(")", 1)[1].split()[1])


def supervised(pid, supervisor):
    seen = set()
    while pid > 1 and pid not in seen:
        if pid == supervisor:
            return True
        seen.add(pid)
        pid = parent_of(pid)
    return False


def pid_files(run_dir):
    """(name, pid) of each *.pid file in run_dir that holds a pid."""
    found = []
    for name in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else []:
        words = (read(os.path.join(run_dir, name), "r") or "").split() if name.endswith(".pid") else []
        if words and words[0].isdigit():
            found.append((name, int(words[0])))
    return found


def lock_holders(path):
    """Pids holding a flock(2) lock on `path`, from /proc/locks."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    ident = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    holders = []
    for line in (read("/proc/locks", "r") or "").splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ident:
            holders.append(int(fields[4]))
    return holders


def listening_inodes(host, port):
    """Socket inodes listening on port at host (or at a wildcard address, or anywhere when host is one)."""
    wanted = {"0.0.0.0", "::", host}
    inodes = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in (read(table, "r") or "").splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != "0A":  # 0A: LISTEN
                continue
            address, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) != port:
                continue
            raw = bytes.fromhex(address)
            # /proc/net/tcp* print each 32-bit word of the address in host byte order.
            words = struct.unpack("=%dI" % (len(raw) // 4), raw)
            text = socket.inet_ntop(family, struct.pack("!%dI" % len(words), *words))
            if text.startswith("::ffff:"):
                text = text[len("::ffff:"):]
            if host in ("0.0.0.0", "::") or text in wanted:
                inodes.add(fields[9])
    return inodes


def socket_owners(inodes):
    owners = set()
    if not inodes:
        return owners
    for pid in pids():
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    owners.add(pid)
        except OSError:
            continue
    return owners


def parse_listen(spec):
    name, _, address = spec.partition("=")
    host, _, port = address.rpartition(":")
    return name, host.strip("[]") or "0.0.0.0", int(port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--supervisor-pid", type=int, default=0)
    parser.add_argument("--lock", action="append", default=[])
    parser.add_argument("--listen", action="append", default=[], type=parse_listen)
    args = parser.parse_args()
    home = os.path.realpath(args.home)

    reasons = {}  # pid -> [reason], for components of this home
    foreign = set()  # (pid, what)

    def holder(pid, what):
        if component_of(pid, home):
            reasons.setdefault(pid, []).append(what)
        elif pid != os.getpid():
            foreign.add((pid, what))

    for pid in pids():
        if component_of(pid, home):
            reasons.setdefault(pid, []).append("command line")
    for name, pid in pid_files(os.path.join(home, "var", "run")):
        if component_of(pid, home):
            reasons.setdefault(pid, []).append("pid file var/run/" + name)
    for path in args.lock:
        for pid in lock_holders(path):
            holder(pid, "holds " + path)
    for name, host, port in args.listen:
        for pid in socket_owners(listening_inodes(host, port)):
            holder(pid, "listens on %s %s:%d" % (name, host, port))

    me = os.getpid()
    for pid, why in sorted(reasons.items()):
        if pid != me and not supervised(pid, args.supervisor_pid):
            print("orphan\t%d\t%s\t%s" % (pid, component_of(pid, home) or "?", "; ".join(why)))
    for pid, what in sorted(foreign):
        command = " ".join(argv_of(pid)) or "?"
        print("foreign\t%d\t%s\t%s" % (pid, what, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
