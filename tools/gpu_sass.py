# NVRTC-compiles one of kiln's wgmma/igemm modules on the device machine
# (cuda-python's nvrtc binding and cuobjdump are there) keeping only the
# named kernels of its IGEMM/IGN/IGW/IGP/IGH macro tables, and writes their
# SASS to OUTDIR/sass.txt and their register and stack use to stdout.
# Usage (from the repository root, on the device machine):
#   cat gpu/cuda/kernels/nhwc.cuh gpu/cuda/kernels/wgmma.cu gpu/cuda/kernels/wgmmap.cu > /tmp/wg.cu
#   python3 tools/gpu_sass.py gpu/cuda/kernels/common.cuh /tmp/wg.cu $OUT ignq_i8_i8 ignw_i8_u8
import os
import re
import subprocess
import sys

from cuda.bindings import nvrtc


def main():
    common, mod, outdir, names = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    keep = []
    for line in open(mod).read().split("\n"):
        m = re.match(r"^(IGEMM|IGN|IGN8|IGW|IGP|IGH)\((\w+),", line)
        if m and m.group(2) not in names:
            continue
        keep.append(line)
    src = open(common).read() + "\n" + "\n".join(keep)
    err, prog = nvrtc.nvrtcCreateProgram(src.encode(), b"mod.cu", 0, [], [])
    opts = [b"--gpu-architecture=sm_90a", b"--std=c++17", b"-default-device", b"-lineinfo"]
    err, = nvrtc.nvrtcCompileProgram(prog, len(opts), opts)
    _, n = nvrtc.nvrtcGetProgramLogSize(prog)
    log = b" " * n
    nvrtc.nvrtcGetProgramLog(prog, log)
    print(log.decode()[:3000])
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        sys.exit(1)
    _, n = nvrtc.nvrtcGetCUBINSize(prog)
    cubin = b" " * n
    nvrtc.nvrtcGetCUBIN(prog, cubin)
    path = "/tmp/kiln_mod.cubin"
    open(path, "wb").write(cubin)
    print(subprocess.run(["cuobjdump", "-res-usage", path], capture_output=True, text=True).stdout)
    sass = subprocess.run(["cuobjdump", "-sass", path], capture_output=True, text=True).stdout
    open(os.path.join(outdir, "sass.txt"), "w").write(sass)


if __name__ == "__main__":
    main()
