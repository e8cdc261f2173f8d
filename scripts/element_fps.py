#!/usr/bin/env python3
"""Frames per second of a gst-launch-1.0 pipeline ending in `fakesink silent=false`, timed where
the frames arrive: gst-launch -v prints fakesink's last-message once per buffer (g_print flushes
each line), and each line is stamped as it comes. The rate is taken over the buffers after the
first SKIP ones, so the start-up (plugin registry, weights, NVRTC compiles, first-frame buffer
allocation and graph capture) and the teardown do not count, within one run.

  element_fps.py [--skip N] [--timeout S] [--json-extra JSON] [--maps FILE] -- gst-launch-1.0 -v ...

Prints one JSON line: buffers (that reached the sink), fps (steady rate after SKIP buffers),
first_buffer_s (launch to the first buffer: the start-up), wall_s, eos (the pipeline ended
normally), rc, timed_out (stopped at --timeout: the rate is that of the buffers that came
through), ok, plus --json-extra's fields. --maps FILE: the shared objects gst-launch-1.0 has
mapped, read from /proc/PID/maps once the SKIP-th buffer is through (which libraries it runs).
"""
import argparse
import json
import re
import subprocess
import sys
import threading
import time

# "/GstPipeline:pipeline0/GstFakeSink:fakesink0: last-message = chain   ******* (fakesink0:sink) ..."
BUFFER = re.compile(r"last-message = chain\b")
# fewer frame intervals than this after the skipped ones (a run cut short): no rate
MIN_INTERVALS = 10


def shared_objects(pid):
    libs = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and ".so" in parts[5]:
                libs.add(parts[5].strip())
    return sorted(libs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--json-extra", default="{}")
    ap.add_argument("--maps")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    # the pipeline's own time limit: a hung pipeline must not eat the device run's minutes
    timer = threading.Timer(a.timeout, p.kill)
    timer.start()
    stamps, eos, tail = [], False, []
    for line in p.stdout:
        now = time.monotonic()
        if BUFFER.search(line):
            stamps.append(now)
            if a.maps and len(stamps) == max(a.skip, 1):
                with open(a.maps, "w") as f:
                    f.write("\n".join(shared_objects(p.pid)) + "\n")
            continue
        if "Got EOS" in line:
            eos = True
        if "last-message" not in line and ": caps = " not in line:  # the error, not -v's noise
            tail = (tail + [line.rstrip()])[-20:]
    rc = p.wait()
    timer.cancel()
    wall = time.monotonic() - t0
    out = json.loads(a.json_extra)
    n = len(stamps)
    steady = n - 1 - a.skip  # frame intervals after the SKIP-th buffer
    enough = steady >= MIN_INTERVALS and stamps[-1] > stamps[a.skip]
    out.update(
        buffers=n,
        fps=steady / (stamps[-1] - stamps[a.skip]) if enough else None,
        skip=a.skip,
        first_buffer_s=stamps[0] - t0 if stamps else None,
        wall_s=wall,
        eos=eos,
        rc=rc,
        timed_out=wall >= a.timeout,
    )
    # a run stopped at its time limit still gives the rate of the frames that came through
    # (timed_out and buffers say so): a slow element is measured, not lost
    ok = out["fps"] is not None and ((rc == 0 and eos) or out["timed_out"])
    if not ok:
        print("\n".join(tail), file=sys.stderr)
    out["ok"] = ok
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
