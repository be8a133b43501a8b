#!/usr/bin/env python3
"""PyTorch reference for kiln's SimpleCNN training (issue 3).

Checks that `kiln train mnist` is a faithful reproduction of the PyTorch
recipe it copies (SimpleCNN, PyTorch default init, inputs normalized as
(x/255 - 0.1307)/0.3081, mean cross-entropy, Adam lr 1e-3, batch 256) and
measures the recipe's own 1-epoch accuracy in PyTorch.

Two subcommands:

  replay  Start from kiln's exact initial weights and batch order (written by
          `go run ./tools/trainref -seed S -steps N -dir D`) and train the
          same N steps in PyTorch; compare step 1's gradients, every step's
          loss and the final weights with kiln's (--double: and both runs'
          drift from a float64 twin, the yardstick for float32 rounding).
          With `replay --epoch` it instead trains a whole epoch from kiln's
          init and order and prints the test accuracy, the number to compare
          with `kiln train mnist --epochs 1 --seed S` (trainref -steps 0
          suffices for that).

  seeds   PyTorch's own recipe end to end (torch.manual_seed(seed) init,
          torch.randperm shuffling as DataLoader(shuffle=True) does): test
          accuracy after each epoch for several seeds.

Examples (Debian's python3-torch: `apt-get install python3-torch`):

  go run ./tools/trainref -seed 1 -steps 20 -dir /tmp/kiln-ref
  /usr/bin/python3 tools/torch_mnist_ref.py replay --dir /tmp/kiln-ref [--double]
  /usr/bin/python3 tools/torch_mnist_ref.py replay --dir /tmp/kiln-ref --epoch
  /usr/bin/python3 tools/torch_mnist_ref.py seeds --seeds 1,2,3,4,5 --epochs 1

The MNIST files are read from the GoMNIST module kiln uses (found through
`go env GOMODCACHE`) or --mnist-dir. CPU use is kept to --threads (default 1).
"""

import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

GOMNIST = "github.com/petar/!go!m!n!i!s!t@v0.0.0-20150320212226-2fbe10d0fa63"
MEAN, STD = 0.1307, 0.3081


def mnist_dir(arg):
    if arg:
        return arg
    cache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True).stdout.strip()
    return os.path.join(cache, GOMNIST, "data")


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(d, images, labels):
    x = read_idx(os.path.join(d, images)).astype(np.float32)
    # as torchvision's ToTensor + Normalize, in float32: (x/255 - mean)/std
    x = (torch.from_numpy(x) / 255.0 - MEAN) / STD
    y = torch.from_numpy(read_idx(os.path.join(d, labels)).astype(np.int64))
    return x.unsqueeze(1).contiguous(), y


def load_mnist(d):
    d = mnist_dir(d)
    tr = load_split(d, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
    te = load_split(d, "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return tr, te


class SimpleCNN(nn.Module):
    """The lesson's model, with kiln's layer names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3)
        self.conv2 = nn.Conv2d(32, 64, 3)
        self.fc1 = nn.Linear(1600, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2, 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2, 2)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def read_safetensors(path):
    with open(path, "rb") as f:
        b = f.read()
    n, = struct.unpack("<Q", b[:8])
    header = json.loads(b[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (path, name, info["dtype"])
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(b, dtype="<f4", count=(hi - lo) // 4, offset=8 + n + lo)
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def evaluate(model, test):
    x, y = test
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(y), 1000):
            logits = model(x[i:i + 1000])
            loss += F.cross_entropy(logits, y[i:i + 1000], reduction="sum").item()
            correct += (logits.argmax(1) == y[i:i + 1000]).sum().item()
    model.train()
    return correct / len(y), loss / len(y)


def rel_diff(a, b):
    """max |a-b| / max |b|: the difference on the scale of the tensor."""
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-30)).item()


def replay(args):
    cfg = dict(line.split(None, 1) for line in open(os.path.join(args.dir, "config.txt")).read().splitlines())
    batch, lr = int(cfg["batch_size"]), float(cfg["lr"])
    assert cfg["optimizer"] == "adam", "replay implements Adam only"
    order = torch.from_numpy(np.fromfile(os.path.join(args.dir, "order.u32"), dtype="<u4").astype(np.int64))
    train, test = load_mnist(args.mnist_dir)
    model = SimpleCNN()
    model.load_state_dict(read_safetensors(os.path.join(args.dir, "init.safetensors")))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = train
    steps = (len(order) + batch - 1) // batch if args.epoch else int(cfg["steps"])
    # A float64 twin from the same start: float32 arithmetic, PyTorch's or
    # kiln's, drifts from it through rounding; kiln is faithful when it
    # stays as close to it as PyTorch's float32 run does.
    twin, twin_opt = None, None
    if args.double and not args.epoch:
        twin = SimpleCNN().double()
        twin.load_state_dict({k: v.double() for k, v in read_safetensors(os.path.join(args.dir, "init.safetensors")).items()})
        twin_opt = torch.optim.Adam(twin.parameters(), lr=lr)
    kiln_losses = []
    if not args.epoch:
        kiln_losses = [float(l.split()[1]) for l in open(os.path.join(args.dir, "losses.txt"))]
        kiln_grads = read_safetensors(os.path.join(args.dir, "grads1.safetensors"))
    worst_loss = 0.0
    start = time.time()
    for s in range(steps):
        idx = order[s * batch:(s + 1) * batch]
        opt.zero_grad()
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        if not args.epoch:
            if s == 0:
                print("step 1 gradients, max|torch - kiln| / max|torch| per tensor:")
                for name, p in model.named_parameters():
                    print(f"  {name:12s} {rel_diff(kiln_grads[name], p.grad):.2e}")
            rel = abs(loss.item() - kiln_losses[s]) / abs(loss.item())
            worst_loss = max(worst_loss, rel)
            if s < 3 or s == steps - 1:
                print(f"step {s + 1}: loss torch {loss.item():.7f} kiln {kiln_losses[s]:.7f} (rel. diff {rel:.1e})")
        opt.step()
        if twin is not None:
            twin_opt.zero_grad()
            F.cross_entropy(twin(x[idx].double()), y[idx]).backward()
            twin_opt.step()
    if args.epoch:
        acc, tl = evaluate(model, test)
        print(f"kiln's init and order (seed {cfg['seed']}), 1 epoch in PyTorch {torch.__version__}: "
              f"test accuracy {100 * acc:.2f}%, test loss {tl:.4f} ({time.time() - start:.0f} s)")
        return
    print(f"worst per-step loss difference over {steps} steps: {worst_loss:.1e}")
    final = read_safetensors(os.path.join(args.dir, "final.safetensors"))
    init = read_safetensors(os.path.join(args.dir, "init.safetensors"))
    print(f"weights after {steps} steps, per tensor: max|torch - kiln| / max|torch|; and of the change from the "
          "initial weights, ‖Δtorch − Δkiln‖ / ‖Δtorch‖:")
    for name, p in model.named_parameters():
        w = p.detach()
        dt, dk = w - init[name], final[name] - init[name]
        print(f"  {name:12s} {rel_diff(final[name], w):.2e}   {((dt - dk).norm() / dt.norm()).item():.2e}")
    if twin is not None:
        print("against the float64 twin, ‖Δ − Δfloat64‖ / ‖Δfloat64‖ per tensor: torch float32, kiln")
        for (name, p), (_, q) in zip(model.named_parameters(), twin.named_parameters()):
            d64 = q.detach().float() - init[name]
            d32, dk = p.detach() - init[name], final[name] - init[name]
            print(f"  {name:12s} {((d32 - d64).norm() / d64.norm()).item():.2e}   {((dk - d64).norm() / d64.norm()).item():.2e}")


def seeds(args):
    dev = torch.device(args.device)
    (x, y), test = load_mnist(args.mnist_dir)
    x, y, test = x.to(dev), y.to(dev), (test[0].to(dev), test[1].to(dev))
    results = []
    for seed in parse_seeds(args.seeds):
        torch.manual_seed(seed)
        model = SimpleCNN().to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=args.lr)
        accs = []
        start = time.time()
        for e in range(args.epochs):
            perm = torch.randperm(len(y)).to(dev)
            for i in range(0, len(y), args.batch_size):
                idx = perm[i:i + args.batch_size]
                opt.zero_grad()
                F.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
            acc, _ = evaluate(model, test)
            accs.append(acc)
        results.append(accs)
        print(f"seed {seed}: test accuracy per epoch " + ", ".join(f"{100 * a:.2f}%" for a in accs)
              + f" ({time.time() - start:.0f} s)", flush=True)
    last = np.array([r[-1] for r in results]) * 100
    print(f"PyTorch {torch.__version__} on {args.device}, after {args.epochs} epoch(s), batch {args.batch_size}, "
          f"Adam lr {args.lr}, {len(last)} seeds: "
          f"mean {last.mean():.2f}%, std {last.std(ddof=1) if len(last) > 1 else 0:.2f}, "
          f"min {last.min():.2f}%, max {last.max():.2f}%")


def parse_seeds(s):
    """A list "1,2,5" or a range "1-20"."""
    if "-" in s:
        lo, hi = s.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(v) for v in s.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist-dir", default="", help="directory of the four MNIST .gz files (default: GoMNIST module)")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("replay", help="replay kiln's steps from its init and order")
    r.add_argument("--dir", required=True, help="directory written by tools/trainref")
    r.add_argument("--epoch", action="store_true", help="train the whole first epoch and report test accuracy")
    r.add_argument("--double", action="store_true", help="also train a float64 twin and compare both with it")
    s = sub.add_parser("seeds", help="PyTorch's own recipe over several seeds")
    s.add_argument("--seeds", default="1,2,3,4,5", help='"1,2,3" or a range "1-20"')
    s.add_argument("--device", default="cpu", help="cpu, or cuda (same recipe, cuDNN's arithmetic)")
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--batch-size", type=int, default=256)
    s.add_argument("--lr", type=float, default=1e-3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    {"replay": replay, "seeds": seeds}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
