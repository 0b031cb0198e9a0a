"""The engine is device-agnostic: with a model and features on a (fake) CUDA device, every
tensor the code creates is on that device too, so nothing is silently computed on the CPU and no
operation mixes devices.

No GPU is needed: ``torch._subclasses.FakeTensorMode`` gives tensors that carry a device
(``cuda:0`` here) and a shape but no data, and raises exactly where CUDA would when an operation
mixes devices (``FakeTensorDeviceMismatchError``: "Expected all tensors to be on the same
device"); what takes gradients runs on the ``meta`` device, which refuses mixing devices too. Operations whose result depends on the data (``.item()``, ``nonzero``, a Python
``if`` on a tensor) cannot run on fake tensors, so the validation steps around the kernels are
replaced by their pass-through here; ``benchmarks/gpu_check.py`` (``make gpu-check``) runs the
whole pipeline on a real GPU and compares it with the CPU.
"""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorDeviceMismatchError, FakeTensorMode

from modlib import attacks, cka, cnt, features, graphs, models

CUDA = torch.device("cuda", 0)


def build_on(device: str, arch: str, width: float) -> torch.nn.Module:
    """A model of ``models`` built with its parameters on ``device``."""
    with torch.device(device):
        return models.build(arch, width=width, image_size=28).eval()


@pytest.fixture
def fake_cuda():
    with FakeTensorMode(allow_non_fake_inputs=False) as mode:
        yield mode


def test_the_fake_device_catches_what_cuda_would(fake_cuda):
    x = torch.randn(8, 3, device="cuda")
    assert x.device == CUDA
    with pytest.raises(FakeTensorDeviceMismatchError):
        x + torch.zeros(8, 3)                           # a CPU tensor created without device=
    with pytest.raises(RuntimeError, match="same device"):
        torch.zeros(8).index_add_(0, torch.arange(8, device="cuda"), torch.ones(8, device="cuda"))


def test_knn_engine_stays_on_the_device(fake_cuda, monkeypatch):
    """normalise_rows, the tiles, the running top-k lists and the edge list of knn_graph."""
    captured = {}

    def capture(rows, cols, values, n, dense=False):
        captured.update(rows=rows, cols=cols, values=values)
        return values

    monkeypatch.setattr(graphs, "as_features", lambda f, name="features": f)  # data checks
    monkeypatch.setattr(graphs, "_top_k", lambda s, k: s.topk(k, dim=1))    # tie repair: an if
    monkeypatch.setattr(graphs, "symmetric_adjacency", capture)          # NumPy: the CPU part
    x = torch.randn(70, 12, device="cuda")
    x_hat = graphs.normalise_rows(x)
    assert x_hat.device == CUDA and x_hat.shape == (70, 12)
    assert all(tile.device == CUDA for _, _, tile in graphs.similarity_tiles(x_hat, 32))
    graphs.knn_graph(x, 3, block_size=32)
    assert {t.device for t in captured.values()} == {CUDA}
    assert captured["rows"].shape == captured["cols"].shape == captured["values"].shape == (210,)


def test_features_probe_returns_on_the_model_device_when_asked(fake_cuda):
    model = build_on("cuda", "vgg11", 0.125)
    x = torch.randn(6, 1, 28, 28)                       # inputs follow the model
    out = features.probe(model, x, device=None, batch_size=4)
    assert list(out) == model.probe_points()
    assert {f.device for f in out.values()} == {CUDA}
    assert out[model.probe_points()[0]].shape[0] == 6
    layer, first = next(features.iter_probe(model, x, device=None))
    assert first.device == CUDA


def test_cka_grams_on_the_device(fake_cuda, monkeypatch):
    monkeypatch.setattr(cka, "_as_features", lambda x, name: x.reshape(len(x), -1).double())
    x = torch.randn(10, 7, device="cuda")
    k = cka.gram(x)
    assert k.device == CUDA and k.dtype == torch.float64 and k.shape == (10, 10)


# Autograd on a fake CUDA tensor asks the CUDA runtime for a context, so what takes gradients
# runs on the meta device instead: shapes and dtypes without data, and the same refusal to mix
# devices ("Tensor on device cpu is not on the expected device meta!").


def test_meta_device_also_refuses_to_mix_devices():
    with pytest.raises(RuntimeError, match="device"):
        torch.zeros(3, device="meta") + torch.zeros(3)


def test_attacks_run_on_the_model_device():
    model = build_on("meta", "resnet20", 0.25)
    x = torch.rand(4, 1, 28, 28, device="meta")
    y = torch.zeros(4, dtype=torch.long, device="meta")
    generator = torch.Generator().manual_seed(0)         # the random start is drawn on the CPU
    for run in (attacks._fgsm, attacks._pgd):
        adv = run(model, x, y, 0.1, steps=2, step_size=0.05, random_start=True,
                  generator=generator)
        assert adv.device.type == "meta" and adv.shape == x.shape
    pixels = attacks.to_pixels(x, "fashion-mnist")
    assert attacks.normalise(pixels, "fashion-mnist").device.type == "meta"


@pytest.mark.parametrize("arch", ["vgg11", "resnet20"])
def test_node_strengths_unroll_on_the_device(arch):
    model = build_on("meta", arch, 0.125)
    strengths = cnt.node_strengths(model, (1, 28, 28))
    assert {s.device.type for s in strengths} == {"meta"}
    assert strengths[0].shape == (28 * 28,) and strengths[-1].shape == (10,)


def test_gpu_check_cpu_fallback_passes(capsys):
    """``make gpu-check`` without CUDA: the same checks with the CPU on both sides (a small
    run: the synthetic set, one architecture, a batch of 4 for the paper-shape step)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    code = gpu_check.main(["--device", "cpu", "--archs", "resnet20", "--dataset", "synthetic",
                           "--paper-archs", "resnet20", "--paper-batch", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "no CUDA device: CPU fallback" in out and "gpu-check passed" in out
    assert out.count("ok  ") == 6 and "FAIL" not in out
