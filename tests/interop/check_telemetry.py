"""Cross-language test, Python side (run by tests/tests/interop.rs).

Usage: python3 check_telemetry.py SEGMENT BINDINGS_DIR

Uses only NumPy, mmap (inside ``open_array``) and the generated ``shared_types`` module. Checks
every field of the ``Telemetry`` records and the scalar arrays Rust wrote (the values of
``Telemetry::nth`` in tests/src/types.rs), then writes ``Telemetry::updated(i, "py")`` values and
updates the scalar arrays, all through zero-copy views.
"""

import sys

sys.path.insert(0, sys.argv[2])

import numpy as np  # noqa: E402

import shared_types as st  # noqa: E402

segment = sys.argv[1]
failures = []


def expect(what, got, want):
    if not np.array_equal(np.asarray(got), np.asarray(want)):
        failures.append(f"{what}: got {got!r}, expected {want!r}")


recs = st.open_array(segment, "telemetry", st.Telemetry)
expect("record count", len(recs), 5)
expect("itemsize", recs.dtype.itemsize, 80)
for i, r in enumerate(recs):
    f = np.float32(i)
    expect(f"[{i}].position", [r["position"]["x"], r["position"]["y"], r["position"]["z"]], np.array([f, f + 0.5, -f], dtype=np.float32))
    expect(f"[{i}].flags", r["flags"], i + 1)
    expect(f"[{i}].level", r["level"], -i)
    expect(f"[{i}].channel", r["channel"], 1000 + i)
    expect(f"[{i}].quality", r["quality"], -100 * i)
    expect(f"[{i}].count", r["count"], 7 * i)
    expect(f"[{i}].delta", r["delta"], -3 * i)
    expect(f"[{i}].gain", r["gain"], np.float32(0.25) * f)
    expect(f"[{i}].serial", r["serial"], (1 << 40) + i)
    expect(f"[{i}].offset", r["offset"], -(1 << 33) - i)
    expect(f"[{i}].value", r["value"], 1.5 * i)
    expect(f"[{i}].samples", r["samples"], np.array([0.5 * i + 0.5 * j for j in range(4)], dtype=np.float32))
    expect(f"[{i}].label", bytes(r["label"]).rstrip(b"\0"), f"rec{i}".encode())

doubles = st.open_array(segment, "doubles", np.dtype("<f8"))
ints = st.open_array(segment, "ints", np.dtype("<i4"))
expect("doubles", doubles, [0.5 * k - 1.0 for k in range(6)])
expect("ints", ints, [-3 + 7 * k for k in range(4)])

if failures:
    print("\n".join(failures))
    sys.exit(1)

for i in range(len(recs)):
    recs[i]["count"] = 1000 + i
    recs[i]["value"] = -2.5 * i
    recs[i]["samples"] = [10 * i + j for j in range(4)]
    recs[i]["position"]["z"] = 100 + i
    label = f"py{i}".encode()
    recs[i]["label"] = list(label) + [0] * (8 - len(label))
doubles *= 2
ints += 1
print(f"python: checked {len(recs)} records, {len(doubles)} doubles, {len(ints)} ints; wrote updates")
