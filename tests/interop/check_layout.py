"""TESTPLAN F4, Python side: ``check_layout`` rejects a hand-written dtype that forgot padding.

Usage: python3 check_layout.py BINDINGS_DIR
"""

import sys

sys.path.insert(0, sys.argv[1])

import numpy as np  # noqa: E402

import shared_types as st  # noqa: E402

# What someone writes by hand for the 64-byte C struct: NumPy packs it into 60 bytes.
forgot_padding = np.dtype(
    [("id", "<i4"), ("xyz", "<f4", (3,)), ("value", "<f8"), ("name", "u1", (32,)),
     ("flag", "u1"), ("reserved", "u1", (3,))]
)
assert forgot_padding.itemsize == 60, forgot_padding.itemsize
try:
    st.check_layout(forgot_padding, st.Padded64)
except ValueError as e:
    message = str(e)
else:
    sys.exit("check_layout accepted a 60-byte dtype for a 64-byte struct")
assert "itemsize is 60 bytes, expected 64" in message, message

# Right size, but a field at the wrong offset.
shifted = np.dtype({"names": ["id", "xyz", "value", "name", "flag", "reserved", "_pad"],
                    "formats": ["<i4", ("<f4", (3,)), "<f8", ("u1", (32,)), "u1", ("u1", (3,)), ("u1", (4,))],
                    "offsets": [0, 4, 20, 28, 60, 61, 64 - 4 + 0], "itemsize": 64})
try:
    st.check_layout(shifted, st.Padded64)
except ValueError as e:
    assert "value: offset is 20, expected 16" in str(e), str(e)
else:
    sys.exit("check_layout accepted a dtype with a moved field")

# A wrong field type.
retyped = np.dtype({"names": list(st.Padded64.names),
                    "formats": ["<u4", ("<f4", (3,)), "<f8", ("u1", (32,)), "u1", ("u1", (3,)), ("u1", (4,))],
                    "offsets": [st.Padded64.fields[n][1] for n in st.Padded64.names], "itemsize": 64})
try:
    st.check_layout(retyped, st.Padded64)
except ValueError as e:
    assert "dtype.id: type is <u4, expected <i4" in str(e), str(e)
else:
    sys.exit("check_layout accepted a dtype with a retyped field")

# The generated dtype itself, and an equivalent spelled differently, pass.
st.check_layout(st.Padded64, st.Padded64)
st.check_layout(np.dtype(st.Padded64.descr), st.Padded64)
print("python: check_layout rejected 3 wrong dtypes and accepted 2 right ones")
