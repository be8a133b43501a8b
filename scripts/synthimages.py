"""Write N seeded N(0,1) 3x224x224 float32 .npy images into DIR (the
benchmark scripts' calibration set: ONNX Runtime's Python quantizer is not
installed here, so kiln calibrates both INT8 flavours on these).

Usage: python3 scripts/synthimages.py DIR [N]"""
import array, os, random, struct, sys

out = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 4
random.seed(1)
os.makedirs(out)
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 224, 224), }"
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
for i in range(n):
    with open(os.path.join(out, "sample%d.npy" % i), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode())
        f.write(array.array("f", [random.gauss(0, 1) for _ in range(3 * 224 * 224)]).tobytes())
