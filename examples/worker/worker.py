"""A process with no route: writes a heartbeat line to its log every few seconds."""
import os
import time

interval = float(os.environ.get("HEARTBEAT_SECONDS", "5"))
beat = 0
while True:
    beat += 1
    print("worker heartbeat %d (instance %s)" % (beat, os.environ.get("CF_INSTANCE_INDEX")), flush=True)
    time.sleep(interval)
