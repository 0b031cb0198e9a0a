"""``make gpu-check``: run modlib on a CUDA device, compare with the CPU, print step times.

What it does (``--device auto`` picks CUDA when there is one):

1. **Smoke-recipe training on the device.** VGG-11 and ResNet-20 under the ``smoke`` recipe
   (Fashion-MNIST, 200 images per class, 2 epochs; the ``synthetic`` set when Fashion-MNIST is
   not on this machine) with ``train.fit`` on the device; prints the mean step time and the test
   accuracy. Nothing is written to the checkpoint cache (the cache key does not name a device).
2. **Modularity on the device against the CPU.** The trained model's modularity curve
   (``modularity.modularity_curve``: features, kNN graphs and Q on the model's device) against
   the same model's curve on the CPU. Features differ in their last bits between a GPU's and a
   CPU's convolutions, which can move a near-tied neighbour, so the stated tolerance is
   ``|ΔQ| <= 2e-3`` per layer (``--q-tol``); the engine alone, given identical features, must
   agree to ``|ΔQ| <= 1e-5`` (``--engine-tol``). TF32 is switched off for the comparison.
3. **The other modules on the device**: CKA matrix, FGSM adversarial pixels and node strengths,
   each against the CPU (CKA to 1e-5, strengths to a relative 1e-9, FGSM: at least 99 % of the
   pixels equal).
4. **A paper-shape training step**: the ``paper-cifar10`` recipe's full-width VGG-16 and
   ResNet-20 on a batch of 256 random 3×32×32 images (``--paper-batch``); prints the step time.

Without CUDA it runs the same checks with the CPU on both sides (the CPU fallback: every
comparison must then hold exactly as stated), says so, uses a smaller paper-shape batch (32) and
exits 0 when everything passes. Exits 1 when a comparison fails.

Run: ``python benchmarks/gpu_check.py [--device auto|cuda|cpu] [--archs vgg11 resnet20]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import sys
import time

import numpy as np
import torch
from torch import nn

from modlib import attacks, cka, cnt, data, features, graphs, models, modularity, train


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_data(name: str):
    try:
        return name, data.load(name, "train"), data.load(name, "test")
    except FileNotFoundError as error:
        print(f"  {name} is not on this machine ({str(error).splitlines()[0]}): using the "
              "synthetic set")
        return "synthetic", data.load("synthetic", "train"), data.load("synthetic", "test")


def timed_fit(model, train_split, test_split, config, device) -> tuple[list, float]:
    """``train.fit`` on ``device``; returns the history and the mean seconds per step."""
    steps = config.epochs * -(-len(train_split) // config.batch_size)
    sync(device)
    start = time.perf_counter()
    history = train.fit(model, train_split, test_split, config, device, progress=False)
    sync(device)
    return history, (time.perf_counter() - start) / steps


def paper_step(arch: str, batch: int, device: torch.device, steps: int = 3) -> float:
    """Seconds per SGD step of ``arch`` at the paper recipe's width on 3×32×32 inputs."""
    settings = train.RECIPES["paper-cifar10"].settings
    torch.manual_seed(0)
    model = models.build(arch, num_classes=10, in_channels=3, width=1.0, image_size=32)
    model.to(device=device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=settings["lr"], momentum=0.9,
                                weight_decay=settings["weight_decay"])
    x = torch.randn(batch, 3, 32, 32).to(device=device, memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,)).to(device)
    times = []
    for step in range(steps + 1):                 # the first step warms up (cuDNN autotuning)
        sync(device)
        start = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        if step:
            times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--archs", nargs="+", default=["vgg11", "resnet20"])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--q-tol", type=float, default=2e-3)
    parser.add_argument("--engine-tol", type=float, default=1e-5)
    parser.add_argument("--paper-archs", nargs="+", default=["vgg16", "resnet20"])
    parser.add_argument("--paper-batch", type=int, default=None)
    args = parser.parse_args(argv)
    device = train.resolve_device(args.device)
    cpu = torch.device("cpu")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False      # compare float32 with float32
        torch.backends.cudnn.allow_tf32 = False
        print(f"device: {torch.cuda.get_device_name(device)} (torch {torch.__version__})")
    else:
        print(f"no CUDA device: CPU fallback, every check runs with the CPU on both sides "
              f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")
    paper_batch = args.paper_batch or (256 if device.type == "cuda" else 32)
    failures = []

    def check(ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    recipe = train.RECIPES["smoke"]
    dataset, train_full, test_full = load_data(args.dataset)
    for arch in args.archs:
        config = dataclasses.replace(recipe.config(arch), dataset=dataset)
        train_split = data.balanced_subset(train_full, min(config.train_per_class,
                                                           len(train_full) // 10), config.seed)
        print(f"{arch}, {config.epochs} epochs of {len(train_split)} {dataset} images:")
        train.seed_everything(config.seed)
        model = train.build_model(config, test_full)
        history, step_s = timed_fit(model, train_split, test_full, config, device)
        print(f"  train.fit on {device.type}: {step_s * 1e3:.1f} ms/step (batch "
              f"{config.batch_size}), test accuracy {history[-1]['test_accuracy']:.4f}")
        check(all(np.isfinite(h["train_loss"]) and np.isfinite(h["test_loss"])
                  for h in history), "finite training and test losses")

        # 2. the modularity curve on the device and on the CPU
        per_class = min(50, len(test_full) // len(test_full.classes))
        n_batches, graph_size = 2, per_class * len(test_full.classes) // 2
        on_device = model.to(device)
        q_device = modularity.modularity_curve(on_device, test_full.x, test_full.y, k=3,
                                               n_batches=n_batches, graph_size=graph_size,
                                               progress=False)
        on_cpu = copy.deepcopy(model).to(cpu)
        q_cpu = modularity.modularity_curve(on_cpu, test_full.x, test_full.y, k=3,
                                            n_batches=n_batches, graph_size=graph_size,
                                            progress=False)
        dq = np.abs(q_device["Q_mean"].to_numpy() - q_cpu["Q_mean"].to_numpy()).max()
        check(dq <= args.q_tol, f"modularity curve, {device.type} vs cpu: max |ΔQ| = {dq:.2e} "
                                f"over {len(q_cpu)} layers (tolerance {args.q_tol:g})")
        x = test_full.x[:graph_size]
        y = test_full.y[:graph_size]
        layer = model.probe_points()[len(model.probe_points()) // 2]
        f = features.probe(on_cpu, x, [layer])[layer]
        q_engine_cpu = modularity.modularity(graphs.knn_graph(f, 3), y)
        q_engine_dev = modularity.modularity(graphs.knn_graph(f.to(device), 3), y)
        check(abs(q_engine_cpu - q_engine_dev) <= args.engine_tol,
              f"kNN graph + Q on the same features ({layer}): |ΔQ| = "
              f"{abs(q_engine_cpu - q_engine_dev):.2e} (tolerance {args.engine_tol:g})")

        # 3. CKA, FGSM and node strengths on the device against the CPU
        grams_dev = cka.layer_grams(on_device, x)
        grams_cpu = cka.layer_grams(on_cpu, x)
        d_cka = np.abs(cka.cka_matrix(grams_dev) - cka.cka_matrix(grams_cpu)).max()
        check(d_cka <= 1e-5, f"CKA matrix: max difference {d_cka:.2e} (tolerance 1e-5)")
        pixels = attacks.to_pixels(x, dataset)
        adv_cpu = attacks.attack("fgsm", attacks.PixelSpaceModel(on_cpu, dataset), pixels, y,
                                 0.05)
        adv_dev = attacks.attack("fgsm", attacks.PixelSpaceModel(on_device, dataset),
                                 pixels.to(device), y.to(device), 0.05)
        same = (adv_dev.cpu() == adv_cpu).float().mean().item()
        check(same >= 0.99, f"FGSM pixels equal: {same:.4f} (at least 0.99)")
        s_dev = cnt.node_strengths(on_device, tuple(x.shape[1:]))
        s_cpu = cnt.node_strengths(on_cpu, tuple(x.shape[1:]))
        rel = max(float((a.cpu() - b).abs().max() / b.abs().max().clamp_min(1e-300))
                  for a, b in zip(s_dev, s_cpu))
        check(rel <= 1e-9, f"node strengths: max relative difference {rel:.2e} "
                           "(tolerance 1e-9)")

    # 4. a paper-shape training step
    for arch in args.paper_archs:
        seconds = paper_step(arch, paper_batch, device)
        print(f"paper-shape step, {arch} at width 1 on {paper_batch}×3×32×32 on {device.type}: "
              f"{seconds * 1e3:.0f} ms ({paper_batch / seconds:.0f} images/s)")
    if failures:
        print(f"{len(failures)} check(s) failed", file=sys.stderr)
        return 1
    print("gpu-check passed" + ("" if device.type == "cuda" else " (CPU fallback: no CUDA "
                                                                   "device here)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
