#!/usr/bin/env python3
"""Temporary disk high-water mark of a command: the most disk its open writable files held at once.

    bench/disk_highwater.py OUTPUT -- COMMAND...

Every 20 ms it sums the allocated blocks (holes excluded) of each regular file the command has
open for writing (its scratch files, deleted or not, and the output being written), and prints
the peak next to OUTPUT's final size. Files opened read-only (the inputs) are not counted.
"""
import os
import subprocess
import sys
import time


def writable_bytes(pid):
    total = 0
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return 0
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                flags = None
                for line in f:
                    if line.startswith("flags:"):
                        flags = int(line.split()[1], 8)
            if flags is None or flags & 3 == 0:  # O_RDONLY
                continue
            st = os.stat(f"/proc/{pid}/fd/{fd}")
            if (st.st_mode & 0o170000) == 0o100000:
                total += st.st_blocks * 512
        except (OSError, ValueError, IndexError):
            pass
    return total


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    output, cmd = sys.argv[1], sys.argv[3:]
    p = subprocess.Popen(cmd)
    peak = 0
    while p.poll() is None:
        peak = max(peak, writable_bytes(p.pid))
        time.sleep(0.02)
    size = os.path.getsize(output) if os.path.exists(output) else 0
    ratio = peak / size if size else float("nan")
    print(f"disk high-water {peak / 1e6:.1f} MB, output {size / 1e6:.1f} MB, ratio {ratio:.2f}x"
          f" (exit {p.returncode})", file=sys.stderr)
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
