#!/usr/bin/env python3
"""Ingestion benchmark: clinfm ingest of the bundled MIMIC-IV demo vs pandas.read_csv of the same
files (every table and dictionary the mapping reads), measured in the same run on the same machine.

pandas only parses (into DataFrames); clinfm parses, maps every row to events, interns codes,
sorts and writes a checksummed store. The ratio is what counts. Peak memory is the maximum
resident set size of each measured process.
Run: /usr/bin/python3 bench/ingest_bench.py [build/clinfm] [repeats]
"""
import os, re, resource, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLINFM = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "clinfm"))
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
MAPPING = os.path.join(ROOT, "mappings", "mimic-iv.map")
# Public datasets are read where they are kept: $CLINFM_DATA, default ../shared/data.
DATA = os.environ.get("CLINFM_DATA") or os.path.join(ROOT, "..", "shared", "data")
INPUT = os.path.join(DATA, "mimic-iv-demo")

def mapped_files():
    files = []
    for line in open(MAPPING):
        m = re.match(r"\s*file\s*=\s*(\S+)", line)
        if m:
            f = m.group(1)
            if f.startswith("${mapping}/"):
                f = os.path.join(os.path.dirname(MAPPING), f[len("${mapping}/"):])
            elif f.startswith("${data}/"):
                f = os.path.join(DATA, f[len("${data}/"):])
            else:
                f = os.path.join(INPUT, f)
            files.append(os.path.normpath(f))
    return sorted(set(files))

def run_measured(cmd):
    """Runs cmd in a fresh process; returns (seconds, peak RSS in MB)."""
    t0 = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr.decode()}")
    return dt

def peak_rss_mb(cmd):
    # Measure in a child that execs cmd, so RUSAGE_CHILDREN holds only that process.
    code = ("import os,resource,subprocess,sys;"
            "subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,check=True);"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code] + cmd, capture_output=True, check=True)
    return int(out.stdout.decode().strip()) / 1024.0

def main():
    files = mapped_files()
    total = sum(os.path.getsize(f) for f in files)
    tmp = tempfile.mkdtemp(prefix="clinfm-bench-")
    store = os.path.join(tmp, "m.store")
    clinfm_cmd = [CLINFM, "ingest", "--mapping", MAPPING, "--input", INPUT, "--out", store, "--quiet"]
    pandas_code = ("import sys,pandas\n"
                   "for f in sys.argv[1:]:\n"
                   "    pandas.read_csv(f, low_memory=False)\n")
    pandas_cmd = ["/usr/bin/python3", "-c", pandas_code] + files
    pandas_import = ["/usr/bin/python3", "-c", "import pandas"]
    env_note = os.environ.get("OPENBLAS_CORETYPE", "")
    # Warm the page cache, then alternate the two so drift hits both alike.
    run_measured(clinfm_cmd); run_measured(pandas_cmd)
    c_times, p_times, i_times = [], [], []
    for _ in range(REPEATS):
        c_times.append(run_measured(clinfm_cmd))
        p_times.append(run_measured(pandas_cmd))
        i_times.append(run_measured(pandas_import))
    c, p, imp = min(c_times), min(p_times), min(i_times)
    p_parse = max(p - imp, 1e-9)
    c_rss, p_rss = peak_rss_mb(clinfm_cmd), peak_rss_mb(pandas_cmd)
    events = subprocess.run([CLINFM, "inspect", store, "--json"], capture_output=True, text=True).stdout
    ev = re.search(r'"events":\s*(\d+)', events).group(1)
    print(f"input: {len(files)} files, {total/1e6:.1f} MB gzipped (mappings/mimic-iv.map over $CLINFM_DATA/mimic-iv-demo)")
    print(f"clinfm ingest (parse+map+sort+write store, {ev} events): {c:.3f} s, peak RSS {c_rss:.0f} MB")
    print(f"pandas.read_csv (parse only, import time {imp:.3f} s excluded): {p_parse:.3f} s "
          f"(with import {p:.3f} s), peak RSS {p_rss:.0f} MB")
    print(f"ratio: clinfm is {p_parse / c:.2f}x faster than pandas parsing alone "
          f"({p / c:.2f}x counting pandas' import); best of {REPEATS}")
    print(f"memory: clinfm peak {c_rss:.0f} MB (target < 200 MB), {p_rss / c_rss:.1f}x less than pandas")

if __name__ == "__main__":
    main()
