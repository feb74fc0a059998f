#!/usr/bin/env python3
"""Serves a static site on 0.0.0.0:$PORT: `server.py [APP_DIR]` (default: the current directory).

Options come from APP_DIR/Staticfile, one `key: value` a line:
  root: DIR              the directory served, relative to APP_DIR (default: APP_DIR)
  directory: visible     list directories that have no index.html (default: 403)
  host_dot_files: true   serve names starting with a dot (default: 404)
  pushstate: enabled     answer unknown paths with the root's index.html (single-page apps)
Symlinks are followed only while they stay inside the root. When the root is APP_DIR itself,
the Staticfile, Procfile and manifest are not served.
"""
import functools
import http.server
import os
import sys

APP_FILES = {"Staticfile", "Staticfile.auth", "Procfile", "manifest.yml", "manifest.yaml"}


def read_options(app_dir):
    options = {}
    try:
        with open(os.path.join(app_dir, "Staticfile"), encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.split(" #", 1)[0].partition(":")
                if sep and not key.startswith("#"):
                    options[key.strip()] = value.strip().strip("'\"")
    except FileNotFoundError:
        pass
    return options


class Handler(http.server.SimpleHTTPRequestHandler):
    real_root = ""
    root_is_app = True
    listings = False
    dot_files = False
    pushstate = False

    def send_head(self):
        path = self.translate_path(self.path)
        if self.pushstate and not os.path.exists(path):
            self.path = "/"
            path = self.translate_path(self.path)
        if not self.servable(path):
            self.send_error(404)
            return None
        return super().send_head()

    def servable(self, path):
        parts = os.path.relpath(path, self.directory).split(os.sep)
        if not self.dot_files and any(p.startswith(".") and p not in (".", "..") for p in parts):
            return False
        if self.root_is_app and parts[0] in APP_FILES:
            return False
        real = os.path.realpath(path)
        return real == self.real_root or real.startswith(self.real_root + os.sep)

    def list_directory(self, path):
        if self.listings:
            return super().list_directory(path)
        self.send_error(403)
        return None


def main():
    app_dir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else ".")
    options = read_options(app_dir)
    root = os.path.normpath(os.path.join(app_dir, options.get("root", ".")))
    Handler.real_root = os.path.realpath(root)
    Handler.root_is_app = Handler.real_root == os.path.realpath(app_dir)
    Handler.listings = options.get("directory") == "visible"
    Handler.dot_files = options.get("host_dot_files") in ("true", "yes", "enabled")
    Handler.pushstate = options.get("pushstate") == "enabled"
    port = int(os.environ.get("PORT", "8080"))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), functools.partial(Handler, directory=root))
    print(f"staticfile: serving {root} on 0.0.0.0:{port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
