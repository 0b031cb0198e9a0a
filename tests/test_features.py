"""Activations at probe points."""

import pytest
import torch

from modlib import features, models


@pytest.fixture(scope="module")
def model_and_inputs():
    torch.manual_seed(0)
    return models.build("resnet20", width=0.25).eval(), torch.randn(13, 1, 12, 12)


def test_probe_returns_flattened_channel_major_outputs(model_and_inputs):
    model, x = model_and_inputs
    out = features.probe(model, x, batch_size=5)
    assert list(out) == model.probe_points()
    with torch.no_grad():
        stem = model.conv1(x)                                  # raw conv output, before BN
    assert out["conv1"].shape == (13, 4 * 12 * 12) and out["conv1"].dtype == torch.float32
    torch.testing.assert_close(out["conv1"], stem.reshape(13, -1))
    torch.testing.assert_close(out["conv1"][0, :144], stem[0, 0].flatten())   # channel 0 first


def test_iter_probe_matches_probe(model_and_inputs):
    model, x = model_and_inputs
    everything = features.probe(model, x)
    streamed = list(features.iter_probe(model, x))
    assert [name for name, _ in streamed] == list(everything)
    for name, f in streamed:
        torch.testing.assert_close(f, everything[name])


def test_model_mode_is_restored_and_bad_layers_refused(model_and_inputs):
    model, x = model_and_inputs
    model.train()
    features.probe(model, x, ["layer1.0"])
    assert model.training
    model.eval()
    with pytest.raises(ValueError, match=r"layers=\['layer9.0'\] are not modules"):
        features.probe(model, x, ["layer9.0"])
    with pytest.raises(ValueError, match="non-empty batch"):
        features.probe(model, x[:0])
