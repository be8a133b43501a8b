# Writes the NumPy fixtures for tensorio's tests (run with NumPy 1.24:
# `python3 gen.py` in this folder). Go tests recompute the same values.
import numpy as np

def value(code, shape):
    n = int(np.prod(shape))
    base = np.arange(n).reshape(shape)
    if code == "b1":
        return base % 3 == 0
    if code[0] == "u":
        return base
    if code[0] == "i":
        return base - n // 2
    return (base - n // 2) * 0.5

arrays = {}
for code in ["f2", "f4", "f8", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "b1"]:
    for order in "<>":
        if code in ("i1", "u1", "b1") and order == ">":
            continue
        dt = np.dtype(order + code) if code != "b1" else np.dtype("?")
        tag = "le" if order == "<" else "be"
        arrays[f"{code}_{tag}_c"] = value(code, (2, 3, 4)).astype(dt)
        arrays[f"{code}_{tag}_f"] = np.asfortranarray(value(code, (2, 3, 4)).astype(dt))
np.savez("all_stored.npz", **arrays)
np.savez_compressed("all_deflated.npz", **arrays)

np.save("f4_2x3x4.npy", value("f4", (2, 3, 4)).astype("<f4"))
np.save("f8_be_fortran.npy", np.asfortranarray(value("f8", (2, 3, 4)).astype(">f8")))
np.save("scalar_i8.npy", np.array(-7, dtype="<i8"))
np.save("empty_f4.npy", np.zeros((0, 3), dtype="<f4"))
with open("v2_i4.npy", "wb") as f:
    np.lib.format.write_array(f, value("i4", (5,)).astype("<i4"), version=(2, 0))
with open("v3_u2.npy", "wb") as f:
    np.lib.format.write_array(f, value("u2", (3, 2)).astype(">u2"), version=(3, 0))
