"""The demo's Python side: read the readings Rust wrote, zero-copy, and acknowledge them.

Usage: python3 reader.py SEGMENT   (shared_types.py must be importable)
"""

import sys

import numpy as np

import shared_types as st

segment = sys.argv[1]
readings = st.open_array(segment, "readings", st.Reading)
print(f"python: {len(readings)} readings, dtype itemsize {readings.dtype.itemsize}")
for r in readings:
    wind = ", ".join(f"{w:.2f}" for w in r["wind"])
    print(
        f"python:   station {r['station']}: {r['temperature']:.1f} °C, {r['humidity']:.0f} %,"
        f" wind ({wind}) at {r['timestamp']}"
    )
# Write through the view: these stores land in shared memory.
readings["acknowledged"] += 1
readings["humidity"] = np.round(readings["humidity"])
print(f"python: mean temperature {readings['temperature'].mean():.2f} °C; acknowledged all, rounded humidity")
