#!/usr/bin/env python3
"""kiln vs PyTorch eager on the same GPU, in the same call.

Runs the Go bench binary (tools/gpu_bench, cross-built with CGO_ENABLED=0)
for kiln's numbers, then PyTorch eager for the same problems, and prints one
table. Usage:

    python3 tools/gpu_bench.py --kiln bin/gpu_bench --models DIR [--out table.md]

PyTorch times are CUDA-event medians with inputs already on the GPU (its
"compute"); "e2e" adds the host->device copy of the input and the copy of the
output back, as kiln's engine does from host memory.
"""
import argparse, json, subprocess, sys, statistics

import torch
import torch.nn as nn


def cuda_time(fn, iters=30, warmup=5):
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


def simplecnn():
    return nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1600, 128), nn.ReLU(), nn.Linear(128, 10))


def torch_extra(iters, batch):
    """torchvision ResNet-50 and MobileNetV2 (random weights), eager,
    channels-last, FP32 (no TF32) and FP16, on GPU-resident input."""
    import torchvision
    out = []
    for bench, ctor in (("resnet50", torchvision.models.resnet50), ("mobilenetv2", torchvision.models.mobilenet_v2)):
        m = ctor().cuda().eval().to(memory_format=torch.channels_last)
        for prec, dt in (("fp32", torch.float32), ("fp16", torch.float16)):
            mm = m.to(dt)
            x = torch.rand(batch, 3, 224, 224, device="cuda", dtype=dt).to(memory_format=torch.channels_last)
            with torch.no_grad():
                t = cuda_time(lambda: mm(x), iters)
            out.append(dict(bench=bench, prec=prec, batch=batch, ms=t))
        del m, mm, x
        torch.cuda.empty_cache()
    return out


def torch_shapes(kiln, iters):
    """bf16 matmul and FP8 torch._scaled_mm at the GEMM shapes kiln ran."""
    out = []
    seen = set()
    for r in kiln:
        if not r["bench"].startswith("gemm ") or r["bench"] in seen:
            continue
        seen.add(r["bench"])
        m, n, k = (int(v) for v in r["shape"].split("x"))
        a = torch.rand(m, k, device="cuda", dtype=torch.bfloat16) * 2 - 1
        b = torch.rand(n, k, device="cuda", dtype=torch.bfloat16) * 2 - 1
        t = cuda_time(lambda: a @ b.t(), iters)
        out.append(dict(bench=r["bench"], prec="bf16", ms=t, tflops=2 * m * n * k / t / 1e9))
        a8, b8 = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn)
        one = torch.ones((), device="cuda")
        t = cuda_time(lambda: torch._scaled_mm(a8, b8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16), iters)
        out.append(dict(bench=r["bench"], prec="fp8", ms=t, tflops=2 * m * n * k / t / 1e9))
        del a, b, a8, b8
    return out


def torch_results(n, iters):
    out = []
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    m = simplecnn().to(dev).eval()
    for prec, dt in (("fp32", torch.float32), ("fp16", torch.float16)):
        mm = m.to(dt)
        for batch in (256, 4096):
            x = torch.rand(batch, 1, 28, 28, device=dev, dtype=dt)
            xh = x.cpu().pin_memory()
            with torch.no_grad():
                t = cuda_time(lambda: mm(x), iters)
                e2e = cuda_time(lambda: mm(xh.to(dev, non_blocking=True)).cpu(), iters)
            out.append(dict(bench="simplecnn", prec=prec, batch=batch, ms=t, e2e_ms=e2e))
    g = torch.Generator(device=dev)
    a = torch.rand(n, n, device=dev, dtype=torch.bfloat16) * 2 - 1
    b = torch.rand(n, n, device=dev, dtype=torch.bfloat16) * 2 - 1
    t = cuda_time(lambda: a @ b.t(), iters)
    out.append(dict(bench=f"gemm{n}", prec="bf16", ms=t, tflops=2 * n**3 / t / 1e9))
    ai = torch.randint(-128, 127, (n, n), device=dev, dtype=torch.int8)
    bi = torch.randint(-128, 127, (n, n), device=dev, dtype=torch.int8)
    t = cuda_time(lambda: torch._int_mm(ai, bi.t()), iters)
    out.append(dict(bench=f"gemm{n}", prec="int8", ms=t, tflops=2 * n**3 / t / 1e9))
    a8 = a.to(torch.float8_e4m3fn)
    b8 = b.to(torch.float8_e4m3fn)
    one = torch.ones((), device=dev)
    t = cuda_time(lambda: torch._scaled_mm(a8, b8.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16), iters)
    out.append(dict(bench=f"gemm{n}", prec="fp8", ms=t, tflops=2 * n**3 / t / 1e9))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default="", help="the Go bench binary to run")
    ap.add_argument("--kiln-json", default="", help="or its output, already collected")
    ap.add_argument("--models", default="")
    ap.add_argument("--gemm", type=int, default=8192)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--out", default="")
    ap.add_argument("--extra", action="store_true", help="also torchvision resnet50 and mobilenet_v2 at --batch, channels-last")
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    if args.kiln_json:
        kout = open(args.kiln_json).read()
    else:
        cmd = [args.kiln, f"-gemm={args.gemm}", f"-iters={args.iters}"]
        if args.models:
            cmd.append(f"-models={args.models}")
        p = subprocess.run(cmd, capture_output=True, text=True)
        sys.stderr.write(p.stderr[-4000:])
        kout = p.stdout
    kiln = [json.loads(l) for l in kout.splitlines() if l.startswith("{")]
    pt = torch_results(args.gemm, args.iters)
    if args.extra:
        pt += torch_extra(args.iters, args.batch)
    pt += torch_shapes(kiln, args.iters)
    key = lambda r: (r["bench"], r["prec"].split()[0] if r["prec"].startswith(("fp32", "fp16")) else r["prec"], r.get("batch", 0))
    ptk = {key(r): r for r in pt}
    fp16 = {r["bench"]: r["ms"] for r in pt if r["prec"] == "fp16" and r["bench"] in ("resnet50", "mobilenetv2")}
    lines = [f"GPU: {torch.cuda.get_device_name()}, PyTorch {torch.__version__}, CUDA {torch.version.cuda}",
             "",
             "| bench | prec | batch | kiln e2e ms | kiln H2D / GPU / D2H ms | kiln TFLOP/s | kiln steps on GPU | PyTorch ms (e2e) | PyTorch TFLOP/s | note |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    seen = set()
    for r in kiln:
        if r["bench"] == "setup":
            lines.append(f"| setup | | | | | | | | | {r.get('error','')} |")
            continue
        if "accuracy" in r["bench"]:
            lines.append(f"| {r['bench']} | {r['prec']} | | | | | {r.get('steps','')} | | | {r.get('accuracy',0):.2f}% of {r.get('images',0)} {r.get('error','')[:100]} |")
            continue
        k = key(r)
        seen.add(k)
        q = ptk.get(k, {})
        cnn = r["bench"] in ("simplecnn", "resnet50", "mobilenetv2")
        split = f"{r.get('h2d_ms',0):.3f} / {r.get('gpu_ms',0):.3f} / {r.get('d2h_ms',0):.3f}" if cnn else ""
        note = r.get("error", "")[:120]
        if r["bench"] in fp16 and r.get("gpu_ms"):
            note = f"PyTorch FP16 / kiln GPU: {fp16[r['bench']] / r['gpu_ms']:.2f}x; build {r.get('build_s',0):.0f} s; {r.get('tactics','')} " + note
        if r.get("shape"):
            note = r["shape"] + " " + note
        ptms = f"{q['ms']:.3f}" + (f" ({q['e2e_ms']:.3f})" if "e2e_ms" in q else "") if q else "-"
        lines.append("| {} | {} | {} | {:.3f} | {} | {} | {} | {} | {} | {} |".format(
            r["bench"], r["prec"], r.get("batch", "") or "", r.get("ms", 0), split,
            f"{r['tflops']:.0f}" if r.get("tflops") else "", r.get("steps", ""), ptms,
            f"{q['tflops']:.0f}" if q.get("tflops") else "", note))
    for r in pt:
        if key(r) not in seen:
            lines.append("| {} | {} | {} | - | | | | {:.3f}{} | {} | PyTorch only |".format(
                r["bench"], r["prec"], r.get("batch", "") or "", r["ms"],
                f" ({r['e2e_ms']:.3f})" if "e2e_ms" in r else "", f"{r['tflops']:.0f}" if r.get("tflops") else ""))
    table = "\n".join(lines)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + "\n")
            f.write("\nraw kiln:\n" + kout + "\nraw torch:\n" + json.dumps(pt, indent=1) + "\n")


if __name__ == "__main__":
    main()
