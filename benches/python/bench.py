"""Round trips and throughput between two Python processes, ipcx next to the Python floor.

    python benches/python/bench.py [--rounds N] [--cpus A,B] [--rows floor,ring,...]

Each row runs a ping-pong of 64-byte messages between this process and a second interpreter
(pinned to CPUs A and B, default 0 and 1) and prints the round trip's p50 and p99.9, also as
a multiple of the floor row measured in the same run: two processes polling a u64 in shared
memory, the least any Python IPC can cost. The 1 MiB rows send one-way and read each message
in place with numpy (`ring-loan-1m`), next to an in-process copy of 1 MiB (`memcpy-1m`).

Rows: floor, ring (publish a copy, read the sample in place; the default wait, which spins a
few microseconds and then sleeps), ring-spin (both sides wait="spin"), ring-loan-spin (written
in place through a loan), unix and mq (ipcx.Sender/Receiver), mp-pipe (multiprocessing.Pipe), ring-loan-1m, memcpy-1m.
Install the package first (`pip install ./crates/ipcx-py`, a release build) and numpy.
"""

import argparse
import os
import subprocess
import sys
import time
from multiprocessing import shared_memory

import numpy as np

import ipcx

MSG = bytes(range(64))
MIB = 1 << 20


def percentiles(samples_ns):
    a = np.sort(np.asarray(samples_ns, dtype=np.int64))
    return a[len(a) // 2], a[min(len(a) - 1, int(len(a) * 0.999))]


# --- the peer (second interpreter) -------------------------------------------------------


def open_publisher(name, wait="spin-then-sleep"):
    while True:
        try:
            return ipcx.Publisher(name, wait=wait)
        except ipcx.NotFound:
            time.sleep(0.001)


def wait_subscribed(pub):
    while pub.subscribers == 0:
        time.sleep(0.001)


def peer(row, tag, rounds):
    if row == "floor":
        shm = shared_memory.SharedMemory(f"ipcx-bench-{tag}")
        # The creator unlinks it; keep this process's resource tracker out of it.
        from multiprocessing import resource_tracker

        resource_tracker.unregister(shm._name, "shared_memory")
        m = shm.buf.cast("Q")
        print("ready", flush=True)
        i = 0
        while True:
            while m[0] == i:
                pass
            i = m[0]
            m[1] = i
            if i >= rounds:
                break
        del m
        shm.close()
    elif row.startswith("ring") and not row.endswith("-1m"):
        wait = "spin" if "spin" in row else "spin-then-sleep"
        sub = ipcx.Subscriber(f"/ipcx-bench-{tag}-ping", wait=wait)
        pub = open_publisher(f"/ipcx-bench-{tag}-pong", wait)
        wait_subscribed(pub)
        print("ready", flush=True)
        for s in sub:
            if len(s) == 0:
                break
            pub.send(s)  # forwards the sample from where it lies
        s = None
    elif row == "ring-loan-1m":
        sub = ipcx.Subscriber(f"/ipcx-bench-{tag}", capacity=8 * MIB, max_message=MIB)
        print("ready", flush=True)
        total = 0
        for s in sub:
            if len(s) == 0:
                break
            a = np.frombuffer(s, np.uint64)
            total += int(a.sum())  # reads the whole message where it lies
            del a
        s = None
        ack = ipcx.Sender(f"unix:@ipcx-bench-{tag}-ack", timeout=10)
        ack.send(str(total).encode())
    elif row in ("unix", "mq"):
        ep_in, ep_out = endpoints(row, tag)
        rx = ipcx.Receiver(ep_in)
        print("ready", flush=True)
        tx = open_sender(ep_out)
        for m in rx:
            if not m.data:
                break
            tx.send(m.data)
    else:
        raise SystemExit(f"unknown row {row}")


def endpoints(row, tag):
    if row == "unix":
        return f"unix:@ipcx-bench-{tag}-ping", f"unix:@ipcx-bench-{tag}-pong"
    return f"mq:/ipcx-bench-{tag}-ping", f"mq:/ipcx-bench-{tag}-pong"


def open_sender(ep):
    while True:
        try:
            return ipcx.Sender(ep)
        except (ipcx.NotFound, ipcx.PeerGone):
            time.sleep(0.001)


# --- the measuring side ------------------------------------------------------------------


def start_peer(row, tag, rounds, cpu):
    p = subprocess.Popen(
        [sys.executable, __file__, "--peer", row, "--tag", tag, "--rounds", str(rounds),
         "--cpus", f"{cpu},{cpu}"],
        stdout=subprocess.PIPE,
    )
    return p


def wait_ready(p):
    line = p.stdout.readline()
    if line != b"ready\n":
        raise SystemExit(f"peer failed: {line!r}")


def measure(row, rounds, cpus):
    tag = f"{os.getpid()}-{row}"
    os.sched_setaffinity(0, {cpus[0]})
    lat = np.empty(rounds, dtype=np.int64)
    clock = time.perf_counter_ns
    if row == "floor":
        shm = shared_memory.SharedMemory(f"ipcx-bench-{tag}", create=True, size=64)
        m = shm.buf.cast("Q")
        m[0] = m[1] = 0
        p = start_peer(row, tag, rounds, cpus[1])
        wait_ready(p)
        for i in range(1, rounds + 1):
            t0 = clock()
            m[0] = i
            while m[1] != i:
                pass
            lat[i - 1] = clock() - t0
        p.wait()
        del m
        shm.close()
        shm.unlink()
        return percentiles(lat)
    if row.startswith("ring"):
        wait = "spin" if "spin" in row else "spin-then-sleep"
        sub = ipcx.Subscriber(f"/ipcx-bench-{tag}-pong", wait=wait)
        p = start_peer(row, tag, rounds, cpus[1])
        pub = open_publisher(f"/ipcx-bench-{tag}-ping", wait)
        wait_subscribed(pub)
        wait_ready(p)
        loan = "loan" in row
        for i in range(rounds):
            t0 = clock()
            if loan:
                with pub.loan(64) as buf:
                    buf[:] = MSG
            else:
                pub.send(MSG)
            s = sub.recv()
            s.release()
            lat[i] = clock() - t0
        pub.send(b"")
        p.wait()
        return percentiles(lat)
    if row in ("unix", "mq"):
        ep_in, ep_out = endpoints(row, tag)
        rx = ipcx.Receiver(ep_out)
        p = start_peer(row, tag, rounds, cpus[1])
        wait_ready(p)
        tx = open_sender(ep_in)
        for i in range(rounds):
            t0 = clock()
            tx.send(MSG)
            rx.recv()
            lat[i] = clock() - t0
        tx.send(b"")
        p.wait()
        return percentiles(lat)
    if row == "mp-pipe":
        import multiprocessing as mp

        a, b = mp.Pipe()
        q = mp.Process(target=pipe_echo, args=(b, cpus[1]))
        q.start()
        for i in range(rounds):
            t0 = clock()
            a.send_bytes(MSG)
            a.recv_bytes()
            lat[i] = clock() - t0
        a.send_bytes(b"")
        q.join()
        return percentiles(lat)
    raise SystemExit(f"unknown row {row}")


def pipe_echo(conn, cpu):
    os.sched_setaffinity(0, {cpu})
    while True:
        m = conn.recv_bytes()
        if not m:
            break
        conn.send_bytes(m)


def throughput(row, count, cpus):
    """GB/s of 1 MiB messages, one way."""
    os.sched_setaffinity(0, {cpus[0]})
    if row == "memcpy-1m":
        src = bytearray(MIB)
        t0 = time.perf_counter()
        for _ in range(count):
            bytes(src)
        return MIB * count / (time.perf_counter() - t0) / 1e9
    tag = f"{os.getpid()}-{row}"
    ack = ipcx.Receiver(f"unix:@ipcx-bench-{tag}-ack")
    p = start_peer(row, tag, count, cpus[1])
    wait_ready(p)
    pub = open_publisher(f"/ipcx-bench-{tag}")
    wait_subscribed(pub)
    t0 = time.perf_counter()
    for i in range(count):
        with pub.loan(MIB) as buf:
            a = np.frombuffer(buf, np.uint64)
            a[:] = i  # writes the whole message in place
            del a
    pub.send(b"")
    ack.recv(timeout=60)
    elapsed = time.perf_counter() - t0
    p.wait()
    return MIB * count / elapsed / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=100_000)
    ap.add_argument("--cpus", default="0,1")
    ap.add_argument(
        "--rows",
        default="floor,ring,ring-spin,ring-loan-spin,unix,mq,mp-pipe,ring-loan-1m,memcpy-1m",
    )
    ap.add_argument("--peer")
    ap.add_argument("--tag")
    args = ap.parse_args()
    cpus = [int(c) for c in args.cpus.split(",")]
    if args.peer:
        os.sched_setaffinity(0, {cpus[0]})
        peer(args.peer, args.tag, args.rounds)
        return
    rows = args.rows.split(",")
    floor = None
    print(f"{'row':<14} {'p50':>10} {'p99.9':>10} {'x floor':>8}   ({args.rounds} round trips of 64 B, CPUs {args.cpus})")
    for row in rows:
        if row.endswith("-1m"):
            gbs = throughput(row, max(200, args.rounds // 100), cpus)
            print(f"{row:<14} {gbs:>8.2f} GB/s one way")
            continue
        slow = row in ("unix", "mq", "mp-pipe")
        p50, p999 = measure(row, args.rounds // 10 if slow else args.rounds, cpus)
        if row == "floor":
            floor = p50
        ratio = f"{p50 / floor:.1f}" if floor else "-"
        print(f"{row:<14} {p50 / 1000:>8.2f}µs {p999 / 1000:>8.2f}µs {ratio:>8}")


if __name__ == "__main__":
    main()
