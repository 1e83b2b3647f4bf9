#!/usr/bin/env python3
"""Helpers of bench/scale_bench.sh (not run on its own).

  scale_bench.py replicate SRC MAP DST R
      The MIMIC-IV demo at SRC made R times larger in distinct patients, into DST (same layout,
      only the tables MAP reads). Copy r of a row has its subject_id, hadm_id and stay_id offset
      by r * 10^9, so every copy is another patient with their own admissions and stays; times
      and values are the original's; tables without a subject_id (dictionaries) are copied once.
      Those id columns come before any quoted text in every MIMIC-IV table, so a line is cut at
      its first commas only. Derived from the demo: keep DST outside the repository.

  scale_bench.py run OUT.json LOG [--until REGEX] -- CMD...
      Runs CMD (stdout and stderr to LOG) and writes its wall time, peak resident set (the
      child's rusage), the high-water mark of the disk held by files it has open for writing
      (sampled every 20 ms from /proc/PID/fd: scratch files, anonymous or not, and the output
      before it is linked) and, with --until, the seconds until a line of its stdout matched.
"""
import gzip
import json
import os
import re
import subprocess
import sys
import threading
import time

OFFSET = 10**9
ID_COLUMNS = ("subject_id", "hadm_id", "stay_id")


def tables(map_path):
    out = []
    for line in open(map_path):
        m = re.match(r"\s*file\s*=\s*(\S+)", line)
        if m and not m.group(1).startswith("${") and m.group(1) not in out:
            out.append(m.group(1))
    return out


def replicate_table(src, dst, copies):
    with gzip.open(src, "rt", newline="") as f:
        header = f.readline()
        body = f.read().splitlines()
    cols = header.rstrip("\r\n").split(",")
    ids = [i for i, c in enumerate(cols) if c in ID_COLUMNS]
    with open(dst, "wb") as raw:
        gz = subprocess.Popen(["gzip", "-1", "-c"], stdin=subprocess.PIPE, stdout=raw)
        w = gz.stdin
        w.write(header.encode())
        if not ids or copies == 1:
            w.write(("\n".join(body) + ("\n" if body else "")).encode())
        else:
            cut = max(ids) + 1
            parts = [line.split(",", cut) for line in body]
            for r in range(copies):
                off = r * OFFSET
                out = []
                for p in parts:
                    q = list(p)
                    for i in ids:
                        if i < len(q) and q[i]:
                            q[i] = str(int(q[i]) + off)
                    out.append(",".join(q))
                w.write(("\n".join(out) + "\n").encode())
        w.close()
        if gz.wait():
            sys.exit("gzip failed on " + dst)
    return len(body) * (copies if ids else 1)


def replicate(src, map_path, dst, copies):
    rows = 0
    for t in tables(map_path):
        os.makedirs(os.path.dirname(os.path.join(dst, t)), exist_ok=True)
        rows += replicate_table(os.path.join(src, t), os.path.join(dst, t), copies)
    print(f"replicated {copies}x into {dst}: {rows} rows", file=sys.stderr)


def written_bytes(pid):
    """Allocated bytes of the regular files pid has open for writing."""
    total, seen = 0, set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                flags = int(re.search(r"flags:\s*([0-7]+)", f.read()).group(1), 8)
            if flags & 3 == 0:
                continue
            st = os.stat(f"/proc/{pid}/fd/{fd}")
        except (OSError, AttributeError):
            continue
        if (st.st_mode & 0o170000) != 0o100000 or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        total += st.st_blocks * 512
    return total


def run(out_json, log, until, cmd):
    t0 = time.monotonic()
    logf = open(log, "wb")
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=logf)
    hit = [None]

    def reader():
        for line in p.stdout:
            if hit[0] is None and until and re.search(until, line.decode(errors="replace")):
                hit[0] = time.monotonic() - t0
            logf.write(line)

    th = threading.Thread(target=reader)
    th.start()
    hw = 0
    while True:
        r = os.wait4(p.pid, os.WNOHANG)
        if r[0]:
            break
        hw = max(hw, written_bytes(p.pid))
        time.sleep(0.02)
    wall = time.monotonic() - t0
    th.join()
    logf.close()
    status, ru = r[1], r[2]
    code = os.waitstatus_to_exitcode(status)
    json.dump({"wall": wall, "rss_kb": ru.ru_maxrss, "temp_hw": hw, "until": hit[0], "code": code,
               "cpu": ru.ru_utime + ru.ru_stime}, open(out_json, "w"))
    if code:
        sys.stderr.write(open(log, errors="replace").read()[-3000:])
        sys.exit(f"failed ({code}): {' '.join(cmd)}")


def main():
    a = sys.argv[1:]
    if a and a[0] == "replicate" and len(a) == 5:
        replicate(a[1], a[2], a[3], int(a[4]))
    elif a and a[0] == "run" and "--" in a:
        k = a.index("--")
        opts, cmd = a[1:k], a[k + 1:]
        until = None
        if "--until" in opts:
            i = opts.index("--until")
            until = opts[i + 1]
            del opts[i:i + 2]
        run(opts[0], opts[1], until, cmd)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
