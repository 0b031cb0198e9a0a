"""Time ``train.fit``, ``train.evaluate`` and ``features.probe`` against plain PyTorch loops over the
same model, data and batch size, per architecture of the default recipe, and print the ratios.

For each architecture of ``cpu-3epoch`` (VGG-11, VGG-16, ResNet-20 at the recipe's widths) and
the same seeded initial weights:

* training: ``train.fit`` for one epoch of ``--steps`` batches of the recipe's batch size on a
  class-balanced Fashion-MNIST subset (its end-of-epoch test evaluation on 10 images only, so
  that what is timed is training), against the textbook loop ``model(x)``, cross-entropy,
  ``zero_grad``, ``backward``, ``step``, scheduler step, over the same batches with the same SGD
  and one-cycle schedule. Two plain loops are timed: in PyTorch's default (contiguous) memory
  layout, as a user would write it, and in channels-last layout, as ``fit`` runs, which isolates
  what ``fit`` adds per step (batch gathering, statistics, progress bar);
* evaluation: ``train.evaluate`` on ``--eval`` test images against a ``no_grad`` loop that sums
  the same loss and counts the same correct predictions;
* probing: ``features.probe`` of every probe point on ``--probe`` test images against a plain
  forward-hook loop that keeps each probe point's flattened output.

Each side runs ``--repeat`` times, interleaved, and the best time is kept (the usual way to shut
out noise from the rest of the machine). Ratios are images per second of modlib over the plain
loop (> 1: modlib is faster). Prints a table and, per architecture, the lines
``fit/plain <arch> <ratio>``, ``fit/plain-channels-last <arch> <ratio>``,
``evaluate/plain <arch> <ratio>`` and ``probe/plain <arch> <ratio>``. Exits non-zero if modlib
and the plain loop disagree: ``fit`` must give the channels-last plain loop's weights bit for bit,
``evaluate`` and ``probe`` the plain loop's numbers exactly.

Run: ``python benchmarks/bench_train.py [--archs vgg11 vgg16 resnet20] [--steps 20] [--eval 2000]
[--probe 500] [--repeat 3] [--device cpu]``. See docs/training.md for what was measured.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import os
import sys
import time

import torch
from torch import nn

from modlib import data, features, train

ARCHS = ("vgg11", "vgg16", "resnet20")


def plain_fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, order: torch.Tensor,
              config: train.TrainConfig, device: torch.device,
              memory_format=torch.contiguous_format) -> nn.Module:
    """The textbook training loop over the batches of ``order``."""
    model.to(device=device, memory_format=memory_format).train()
    steps = -(-len(order) // config.batch_size)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr,
                                                    total_steps=config.epochs * steps)
    for step in range(steps):
        idx = order[step * config.batch_size:(step + 1) * config.batch_size]
        xb = x[idx].to(device=device, memory_format=memory_format)
        yb = y[idx].to(device)
        loss = nn.functional.cross_entropy(model(xb), yb)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return model


@torch.no_grad()
def plain_evaluate(model: nn.Module, x, y, batch_size: int, device) -> tuple[float, float]:
    model.eval()
    correct, loss = 0, 0.0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size].to(device), y[start:start + batch_size].to(device)
        logits = model(xb)
        loss += nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        correct += (logits.argmax(1) == yb).sum().item()
    return correct / len(x), loss / len(x)


@torch.no_grad()
def plain_probe(model: nn.Module, x, names, batch_size: int, device) -> dict:
    modules = dict(model.named_modules())
    outputs = {name: [] for name in names}
    handles = [modules[name].register_forward_hook(
        lambda m, i, out, name=name: outputs[name].append(out.reshape(len(out), -1).cpu()))
        for name in names]
    model.eval()
    try:
        for start in range(0, len(x), batch_size):
            model(x[start:start + batch_size].to(device))
    finally:
        for handle in handles:
            handle.remove()
    return {name: torch.cat(chunks) for name, chunks in outputs.items()}


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", nargs="+", default=list(ARCHS))
    parser.add_argument("--steps", type=int, default=20, help="training batches per run")
    parser.add_argument("--eval", type=int, default=2000, help="test images evaluated")
    parser.add_argument("--probe", type=int, default=500, help="test images probed")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = train.resolve_device(args.device)
    recipe = train.RECIPES["cpu-3epoch"]
    batch = recipe.settings["batch_size"]
    train_full = data.load("fashion-mnist", "train")
    test_full = data.load("fashion-mnist", "test")
    per_class = -(-args.steps * batch // len(train_full.classes))
    train_split = data.balanced_subset(train_full, per_class, seed=0)
    train_split = data.ImageSplit(train_split.x[:args.steps * batch],
                                  train_split.y[:args.steps * batch], train_split.classes, "train")
    tiny_test = data.balanced_subset(test_full, 1, seed=0)
    eval_split = data.balanced_subset(test_full, -(-args.eval // 10), seed=1)
    probe_x = data.balanced_subset(test_full, -(-args.probe // 10), seed=2).x
    n_train = len(train_split)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start "
          "(timings under load are noisy: rerun on a quiet machine)")
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{n_train} training images in {args.steps} steps of {batch}, {len(eval_split)} "
          f"evaluated, {len(probe_x)} probed; best of {args.repeat}")
    print(f"{'arch':>9} {'fit img/s':>10} {'plain':>8} {'plain-CL':>9} {'eval img/s':>11} "
          f"{'plain':>8} {'probe img/s':>12} {'plain':>8}")
    lines, failures = [], []
    for arch in args.archs:
        config = dataclasses.replace(recipe.config(arch), epochs=1, train_per_class=0)
        train.seed_everything(config.seed)
        initial = train.build_model(config, test_full)
        order = torch.randperm(n_train, generator=torch.Generator().manual_seed(config.seed))
        best = {key: float("inf") for key in ("fit", "plain", "plain_cl", "eval", "plain_eval",
                                              "probe", "plain_probe")}
        results = {}
        trainers = {
            "fit": lambda m: train.fit(m, train_split, tiny_test, config, device, progress=False),
            "plain": lambda m: plain_fit(m, train_split.x, train_split.y, order, config, device),
            "plain_cl": lambda m: plain_fit(m, train_split.x, train_split.y, order, config,
                                            device, torch.channels_last)}
        for repeat in range(args.repeat):
            keys = list(trainers)
            for key in keys[repeat % 3:] + keys[:repeat % 3]:   # each goes first in turn
                model = copy.deepcopy(initial)
                torch.manual_seed(config.seed)   # dropout draws from the global generator
                t, _ = timed(lambda: trainers[key](model))
                best[key], results[key] = min(best[key], t), model
            trained = results["fit"].to(device)
            names = trained.probe_points()
            jobs = {"eval": lambda: train.evaluate(trained, eval_split, device=device),
                    "plain_eval": lambda: plain_evaluate(trained, eval_split.x, eval_split.y,
                                                         1000, device),
                    "probe": lambda: features.probe(trained, probe_x, names),
                    "plain_probe": lambda: plain_probe(trained, probe_x, names, 500, device)}
            sequence = list(jobs) if repeat % 2 == 0 else list(jobs)[::-1]   # none always first
            for key in sequence:
                t, results[key] = timed(jobs[key])
                best[key] = min(best[key], t)
        fit_state = results["fit"].state_dict()
        plain_state = results["plain_cl"].to(memory_format=torch.contiguous_format).state_dict()
        if any(not torch.equal(fit_state[k].cpu(), plain_state[k].cpu()) for k in fit_state):
            failures.append(f"{arch}: fit's weights differ from the plain loop's")
        if results["eval"] != results["plain_eval"]:
            failures.append(f"{arch}: evaluate {results['eval']} != plain {results['plain_eval']}")
        if any(not torch.equal(results["probe"][n], results["plain_probe"][n]) for n in names):
            failures.append(f"{arch}: probe's features differ from the plain hooks'")
        rate = {key: (n_train if key in ("fit", "plain", "plain_cl") else
                      len(eval_split) if "eval" in key else len(probe_x)) / seconds
                for key, seconds in best.items()}
        print(f"{arch:>9} {rate['fit']:>10.0f} {rate['plain']:>8.0f} {rate['plain_cl']:>9.0f} "
              f"{rate['eval']:>11.0f} {rate['plain_eval']:>8.0f} {rate['probe']:>12.0f} "
              f"{rate['plain_probe']:>8.0f}")
        lines += [f"fit/plain {arch} {rate['fit'] / rate['plain']:.2f}",
                  f"fit/plain-channels-last {arch} {rate['fit'] / rate['plain_cl']:.2f}",
                  f"evaluate/plain {arch} {rate['eval'] / rate['plain_eval']:.2f}",
                  f"probe/plain {arch} {rate['probe'] / rate['plain_probe']:.2f}"]
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print("\n".join(lines))
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
