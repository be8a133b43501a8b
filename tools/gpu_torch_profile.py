#!/usr/bin/env python3
"""PyTorch side of kiln's GPU profile (issue 11): torchvision ResNet-50 and
MobileNetV2 (random weights, eager, FP16) at a batch, timed with CUDA events
in channels-last and NCHW, then torch.profiler's per-kernel table of the
channels-last run, so that kiln's per-step profile (gpu_bench -profile)
can be compared layer class by layer class on the same card."""
import argparse, statistics

import torch
import torchvision
from torch.profiler import profile, ProfilerActivity


def cuda_time(fn, iters=20, warmup=5):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--rows", type=int, default=25)
    a = ap.parse_args()
    print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version(), torch.cuda.get_device_name())
    for name, ctor in (("resnet50", torchvision.models.resnet50), ("mobilenetv2", torchvision.models.mobilenet_v2)):
        m = ctor().cuda().eval().half()
        x = torch.rand(a.batch, 3, 224, 224, device="cuda", dtype=torch.float16)
        with torch.no_grad():
            t_nchw = cuda_time(lambda: m(x), a.iters)
            mc = m.to(memory_format=torch.channels_last)
            xc = x.to(memory_format=torch.channels_last)
            t_cl = cuda_time(lambda: mc(xc), a.iters)
            print(f"{name} fp16 batch {a.batch}: channels-last {t_cl:.2f} ms, NCHW {t_nchw:.2f} ms")
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for _ in range(3):
                    mc(xc)
                torch.cuda.synchronize()
            print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=a.rows, max_name_column_width=90))
        del m, mc, x, xc
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
