"""Cross-language test, Python side of the stale-bindings check (run by tests/tests/interop.rs).

Usage: check_stale.py SEGMENT STALE_DIR FRESH_DIR

STALE_DIR holds a shared_types.py generated from an older SensorReading (its first two fields
swapped), FRESH_DIR one generated from the current type. The stale dtype is refused with a
message naming the type and the field; the fresh one, and no dtype at all (the segment's
description), open the array; the queue `jobs` and the mutex `lock` are refused as not
arrays.
"""

import importlib.util
import sys

import numpy as np  # noqa: E402


def load(directory, tag):
    spec = importlib.util.spec_from_file_location(tag, f"{directory}/shared_types.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


segment, stale_dir, fresh_dir = sys.argv[1:4]
stale, fresh = load(stale_dir, "stale_types"), load(fresh_dir, "fresh_types")
try:
    stale.open_array(segment, "readings", stale.SensorReading, readonly=True)
except ValueError as e:
    print("stale refused:", e)
else:
    sys.exit("the stale dtype was accepted")

described = fresh.open_array(segment, "readings", readonly=True)
assert described.dtype.names == ("temperature", "humidity", "timestamp"), described.dtype
assert described.dtype == fresh.SensorReading, (described.dtype, fresh.SensorReading)
typed = fresh.open_array(segment, "readings", fresh.SensorReading, readonly=True)
assert np.array_equal(described, typed)
assert [float(t) for t in described["temperature"]] == [20.0, 20.5, 21.0], described
print("described:", described.tolist())

# A hand-written dtype with the fields in the stale order is refused too.
try:
    fresh.open_array(
        segment, "readings", np.dtype([("humidity", "<f4"), ("temperature", "<f4"), ("ts", "<u8")]),
        readonly=True,
    )
except ValueError as e:
    print("hand-written refused:", e)
else:
    sys.exit("the hand-written dtype was accepted")

for other in ("jobs", "lock"):
    try:
        fresh.open_array(segment, other, fresh.SensorReading, readonly=True)
    except ValueError as e:
        print(f"{other} refused:", e)
    else:
        sys.exit(f"{other} opened as an array")
