#!/usr/bin/env python3
"""How many threads of a command are ready to run, sampled every 10 ms: the CPU share it could
take on an idle machine, measured on a busy one.

    python3 bench/runnable_threads.py [--cores 2] -- CMD...

A thread in state R (/proc/PID/task/TID/stat) is running or waiting for a CPU. The mean over the
run of min(cores, runnable threads), x 100, is the CPU% the command could reach on `cores` idle
cores: other work on the machine stretches every phase of the command alike, so the mean holds
under load, where the command's measured CPU% only says how busy the machine was. Also printed:
wall, the command's CPU time, and the projection by tenths of the run (where it is serial).
It is a benchmark aid, not a test.
"""
import os
import resource
import subprocess
import sys
import time


def main():
    args = sys.argv[1:]
    cores = 2
    if args[:1] == ["--cores"]:
        cores, args = int(args[1]), args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    t0 = time.time()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    trace, total = [], 0
    while p.poll() is None:
        r = 0
        try:
            for tid in os.listdir(f"/proc/{p.pid}/task"):
                try:
                    with open(f"/proc/{p.pid}/task/{tid}/stat") as f:
                        r += f.read().rsplit(")", 1)[1].split()[0] == "R"
                except OSError:
                    continue
        except OSError:
            break
        trace.append(min(cores, r))
        total += r
        time.sleep(0.01)
    wall = time.time() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru.ru_utime + ru.ru_stime
    n = max(len(trace), 1)
    print(f"wall {wall:.2f} s, CPU {cpu:.2f} s ({100 * cpu / wall:.0f}% on this machine now); runnable threads: "
          f"mean {total / n:.2f}, {cores}-core projection {100 * sum(trace) / n:.0f}% ({len(trace)} samples)")
    k = max(1, len(trace) // 10)
    print("  by tenths of the run:", " ".join(f"{100 * sum(trace[i:i + k]) / len(trace[i:i + k]):.0f}"
                                             for i in range(0, len(trace), k)))
    sys.exit(p.returncode)


if __name__ == "__main__":
    main()
