"""Time ``modlib.cnt.node_strengths`` on one conv layer against a plain loop, and check they agree.

The layer is the one La Malfa et al.'s code (EmanueleLM/CNT-DNNs, ``Convolution.py``) was timed on:
a 30×30×64 input, 64 output channels, a 3×3 kernel, stride 1, no padding (28×28×64 output).
The reference follows the original formula: for every output position and every kernel tap it
walks the input and output channels in Python and adds each kernel entry ``K[c_out, c_in, n, m]``
to the out-strength of input unit ``(c_in, i+n, j+m)`` and to the in-strength of output unit
``(c_out, i, j)``; the bias is added to every output unit. modlib does one forward pass of an
all-ones input and one backward pass (``docs/complex_networks.md``).

Run: ``python benchmarks/bench_cnt.py [--size 30] [--channels 64] [--repeat 3]``. Prints both
times (modlib: best of ``repeat``), the ratio, and the largest difference; exits non-zero when
the two disagree by more than 1e-9 relative.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from torch import nn

from modlib import cnt


def reference_strengths(conv: nn.Conv2d, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(input out-strengths (C_in·H·W,), output in-strengths + bias (C_out·H'·W',)) by loops
    over positions, kernel taps and channels, in plain Python floats."""
    k = conv.weight.detach().double().numpy()
    c_out, c_in, kh, kw = k.shape
    taps = k.transpose(2, 3, 1, 0).tolist()        # taps[n][m][c_in][c_out], as Keras stores it
    oh, ow = size - kh + 1, size - kw + 1
    out_s = [[[0.0] * size for _ in range(size)] for _ in range(c_in)]
    in_s = [[[0.0] * ow for _ in range(oh)] for _ in range(c_out)]
    bias = conv.bias.detach().double().tolist()
    for i in range(oh):
        for j in range(ow):
            for n in range(kh):
                for m in range(kw):
                    tap = taps[n][m]
                    for ci in range(c_in):
                        row = tap[ci]
                        total = 0.0
                        for co in range(c_out):
                            w = row[co]
                            total += w
                            in_s[co][i][j] += w
                        out_s[ci][i + n][j + m] += total
    for co in range(c_out):
        for i in range(oh):
            for j in range(ow):
                in_s[co][i][j] += bias[co]
    return np.array(out_s).ravel(), np.array(in_s).ravel()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30, help="input height and width")
    parser.add_argument("--channels", type=int, default=64, help="input and output channels")
    parser.add_argument("--repeat", type=int, default=3, help="modlib runs; the best is kept")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    conv = nn.Conv2d(args.channels, args.channels, 3)
    model = nn.Sequential(conv)
    shape = (args.channels, args.size, args.size)

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        strengths = cnt.node_strengths(model, shape)
        times.append(time.perf_counter() - start)
    fast = min(times)
    start = time.perf_counter()
    ref_out, ref_in = reference_strengths(conv, args.size)
    slow = time.perf_counter() - start

    diff = max(np.abs(strengths[0].numpy() - ref_out).max() / np.abs(ref_out).max(),
               np.abs(strengths[1].numpy() - ref_in).max() / np.abs(ref_in).max())
    print(f"layer: {args.size}x{args.size}x{args.channels} -> {args.channels}, 3x3, stride 1, "
          f"no padding ({strengths[0].numel()} + {strengths[1].numel()} nodes)")
    print(f"{'reference loop':>16}: {slow:8.3f} s")
    print(f"{'modlib.cnt':>16}: {fast:8.4f} s (best of {args.repeat})")
    print(f"{'ratio':>16}: {slow / fast:8.0f}x")
    print(f"{'max rel. diff':>16}: {diff:.2e}")
    if diff > 1e-9:
        print("FAILED: modlib and the reference disagree", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
