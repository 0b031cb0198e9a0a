"""FGSM and PGD in pixel space: the ε-ball and [0, 1] constraints, the loss goes up, success
rises with ε on a small trained model; pixel/normalised conversions; bad input."""

import numpy as np
import pytest
import torch
from torch import nn

from modlib import attacks, data, train


@pytest.fixture(scope="module")
def trained():
    config = train.TrainConfig(arch="mlp", dataset="digits", width=0.25, epochs=15, batch_size=64,
                               lr=0.05)
    result = train.load_or_train(config, device="cpu", progress=False)
    test = data.load("digits", "test")
    model = attacks.PixelSpaceModel(result.model, "digits")
    return model, attacks.to_pixels(test.x, "digits"), test.y, result.test_accuracy


def _loss(model, x, y):
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def test_pixel_round_trip_and_wrapper_match_the_model():
    test = data.load("digits", "test")
    pixels = attacks.to_pixels(test.x, "digits")
    assert float(pixels.min()) >= 0 and float(pixels.max()) <= 1
    torch.testing.assert_close(attacks.normalise(pixels, "digits"), test.x, atol=1e-5, rtol=0)
    torch.manual_seed(0)
    model = train.build_model(train.TrainConfig(arch="mlp", dataset="digits"), test).eval()
    wrapped = attacks.PixelSpaceModel(model, "digits")
    with torch.no_grad():
        torch.testing.assert_close(wrapped(pixels), model(test.x), atol=1e-4, rtol=1e-4)


def test_fgsm_on_a_linear_model_steps_along_the_weight_sign():
    # logits = [0, w·x]; for label 0 the loss grows with w·x, so the step is +ε·sign(w)
    w = torch.tensor([0.5, -2.0, 1.0, -0.1])
    model = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.stack([torch.zeros(4), w]))
    x = torch.tensor([[0.5, 0.5, 0.98, 0.01]])
    adv = attacks.attack("fgsm", model, x.view(1, 4), torch.tensor([0]), 0.1)
    expected = torch.tensor([[0.6, 0.4, 1.0, 0.0]])            # last two clipped to [0, 1]
    torch.testing.assert_close(adv, expected)


@pytest.mark.parametrize("name", attacks.ATTACKS)
@pytest.mark.parametrize("eps", [0.03, 0.2])
def test_perturbation_stays_in_the_ball_and_in_pixel_range(trained, name, eps):
    model, x, y, _ = trained
    adv = attacks.attack(name, model, x, y, eps, steps=5, seed=1)
    assert adv.shape == x.shape and adv.dtype == torch.float32
    assert float((adv - x).abs().max()) <= eps + 1e-6
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert float((adv - x).abs().max()) > 0.5 * eps         # it actually moved
    assert _loss(model, adv, y) > _loss(model, x, y) + 0.1


def test_pgd_is_stronger_than_fgsm_and_seeded(trained):
    model, x, y, _ = trained
    fgsm = attacks.attack("fgsm", model, x, y, 0.1)
    pgd = attacks.attack("pgd", model, x, y, 0.1, steps=10, seed=3)
    assert _loss(model, pgd, y) > _loss(model, fgsm, y)
    torch.testing.assert_close(pgd, attacks.attack("pgd", model, x, y, 0.1, steps=10, seed=3))
    assert torch.equal(attacks.attack("pgd", model, x, y, 0.0), x)


def test_success_rises_with_eps(trained):
    model, x, y, accuracy = trained
    assert accuracy > 0.85                                     # a model worth attacking
    clean = attacks.predict(model, x)
    for name in attacks.ATTACKS:
        rates = [attacks.success_rate(clean, attacks.predict(
            model, attacks.attack(name, model, x, y, eps, steps=10)), y)
            for eps in (0.0, 0.02, 0.05, 0.1, 0.2, 0.4)]
        assert rates[0] == 0.0
        assert all(b >= a - 0.02 for a, b in zip(rates, rates[1:])), (name, rates)
        assert rates[-1] > 0.8 and rates[-1] > rates[1] + 0.3, (name, rates)


def test_success_rate_by_hand():
    y = torch.tensor([0, 1, 2, 3])
    clean = torch.tensor([0, 1, 2, 0])          # three correct
    adv = torch.tensor([1, 1, 0, 3])            # two of the three flipped
    assert attacks.success_rate(clean, adv, y) == pytest.approx(2 / 3)
    assert np.isnan(attacks.success_rate(torch.tensor([1, 0, 0, 0]), adv, y))


def test_batch_success_by_hand():
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    clean = torch.tensor([0, 1, 0, 3, 0, 0])       # batch 0: 2 correct, batch 1: 2 correct
    adv = torch.tensor([1, 1, 0, 0, 2, 0])         # batch 0: 1 of the 2 flipped; batch 1: 2 of 2
    np.testing.assert_allclose(attacks.batch_success(clean, adv, y, 3), [0.5, 1.0])
    assert np.isnan(attacks.batch_success(torch.tensor([1, 0]), torch.tensor([1, 0]),
                                          torch.tensor([0, 1]), 2)[0])
    with pytest.raises(ValueError, match="y has 6 labels: must be a positive multiple of "
                                         "graph_size=4"):
        attacks.batch_success(clean, adv, y, 4)


def test_bad_input_names_the_value():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    x, y = torch.rand(3, 1, 2, 2), torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match=r"eps=1.5 is not allowed: must lie in \[0, 1\]"):
        attacks.attack("fgsm", model, x, y, 1.5)
    with pytest.raises(ValueError, match=r"eps=-0.1 is not allowed"):
        attacks.attack("pgd", model, x, y, -0.1)
    with pytest.raises(ValueError, match=r"attack='cw' is not allowed: choose one of 'fgsm', "
                                         r"'pgd'"):
        attacks.attack("cw", model, x, y, 0.1)
    with pytest.raises(ValueError, match=r"pixels in \[0, 1\], got values in \[-0.500"):
        attacks.attack("fgsm", model, torch.linspace(-0.5, 0.5, 12).view(3, 1, 2, 2), y, 0.1)
    with pytest.raises(ValueError, match=r"one label per input, shape \(3,\)"):
        attacks.attack("fgsm", model, x, y[:2], 0.1)
    with pytest.raises(ValueError, match="steps=0"):
        attacks.attack("pgd", model, x, y, 0.1, steps=0)
