"""Objects a Python process made are cleaned up after it is killed with SIGKILL: `ipcx clean`
sees them as stale."""

import signal
import subprocess
import sys

from conftest import finish

CREATE = """
import sys, time, ipcx
name = sys.argv[1]
handles = [
    ipcx.Receiver(f"mq:/{name}"),
    ipcx.Receiver(f"fifo:/tmp/{name}"),
    ipcx.Subscriber(f"/{name}"),
]
print("ready", flush=True)
time.sleep(600)
"""


def test_killed_python_leaves_nothing_unexplained(name, ipcx_bin, children):
    p = children.start([sys.executable, "-c", CREATE, name])
    assert p.stdout.readline() == b"ready\n", finish(p)
    p.send_signal(signal.SIGKILL)
    p.wait(10)
    objects = [f"mq:/{name}", f"fifo:/tmp/{name}", f"shm:/{name}"]
    try:
        out = subprocess.run(
            [ipcx_bin, "clean", "--dry-run"], capture_output=True, text=True, timeout=60
        ).stdout
        for obj in objects:
            lines = [line for line in out.splitlines() if f"{obj}:" in line]
            assert lines and lines[0].startswith("remove"), (obj, out)
    finally:
        for obj in objects:
            subprocess.run([ipcx_bin, "rm", obj], capture_output=True, timeout=60)
