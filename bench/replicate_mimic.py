#!/usr/bin/env python3
"""Replicates the MIMIC-IV demo into R times as many distinct patients, for scale measurements.

    bench/replicate_mimic.py SRC DST R

SRC is the demo folder (hosp/, icu/ of .csv.gz); DST gets the same layout. Copy r (0..R-1) of a
row has subject_id, hadm_id and stay_id offset by r * 10^9, so every copy is a distinct patient
with its own admissions and stays (the mapping joins on hadm_id); times and values are those of
the original, and dictionary tables (no subject_id) are copied once. The output is data derived
from the demo: keep it outside the repository (it is never committed).
"""
import csv
import gzip
import os
import sys

OFFSET = 10**9
ID_COLUMNS = ("subject_id", "hadm_id", "stay_id")


def replicate(src, dst, copies):
    with gzip.open(src, "rt", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    ids = [i for i, name in enumerate(header) if name in ID_COLUMNS]
    with gzip.open(dst, "wt", newline="", compresslevel=1) as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        if "subject_id" not in header:
            w.writerows(body)
            return len(body)
        for r in range(copies):
            off = r * OFFSET
            for row in body:
                out = list(row)
                for i in ids:
                    if i < len(out) and out[i]:
                        out[i] = str(int(out[i]) + off)
                w.writerow(out)
    return len(body) * copies


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
    total = 0
    for sub in ("hosp", "icu"):
        os.makedirs(os.path.join(dst, sub), exist_ok=True)
        for name in sorted(os.listdir(os.path.join(src, sub))):
            if name.endswith(".csv.gz"):
                total += replicate(os.path.join(src, sub, name), os.path.join(dst, sub, name), copies)
    print(f"{dst}: {copies}x, {total} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
