"""Layer pruning: unit removal with inherited weights, selection rules, cost counts."""

import numpy as np
import pandas as pd
import pytest
import torch

from modlib import models, pruning, train


def fake_curve(model, q):
    names = model.probe_points()
    assert len(q) == len(names)
    return pd.DataFrame({"layer": np.arange(1, len(q) + 1), "name": names, "Q_mean": q,
                         "Q_std": 0.0})


def test_removal_keeps_every_other_weight_and_counts_add_up():
    torch.manual_seed(0)
    model = models.build("vgg16", width=0.25).eval()
    remove = ["features.1", "features.12", "features.15"]
    pruned = models.remove_units(model, remove)
    assert pruned(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    removed_params = sum(p.numel() for name in remove
                         for p in model.get_submodule(name).parameters())
    assert models.count_parameters(pruned) == models.count_parameters(model) - removed_params
    assert pruned.config == [64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, "M",
                             512, 512, "M"]
    # surviving units, in order, carry the original tensors (conv weights and BN statistics)
    survivors = [u.name for u in model.units() if u.name not in remove]
    for new, old in zip(pruned.units(), survivors):
        for key, value in pruned.get_submodule(new.name).state_dict().items():
            assert torch.equal(value, model.get_submodule(old).state_dict()[key]), (new, old)
    assert torch.equal(pruned.classifier[-1].weight, model.classifier[-1].weight)
    assert not pruned.training


def test_removing_an_identity_block_changes_nothing():
    torch.manual_seed(1)
    model = models.build("resnet20", width=0.5).eval()
    with torch.no_grad():                       # make layer2.1 an identity: zero residual branch
        model.layer2[1].bn2.weight.zero_()
        model.layer2[1].bn2.bias.zero_()
    x = torch.randn(4, 1, 28, 28)
    pruned = models.remove_units(model, ["layer2.1"])
    assert pruned.num_blocks == [3, 2, 3]
    torch.testing.assert_close(pruned(x), model(x))
    torch.testing.assert_close(models.remove_units(model, [])(x), model(x))


def test_removal_refuses_what_would_break_the_network():
    model = models.build("resnet20", width=0.5)
    with pytest.raises(ValueError, match="'layer2.0' cannot be removed: it changes the width or "
                                         "resolution"):
        models.remove_units(model, ["layer2.0"])
    with pytest.raises(ValueError, match="would leave stage 1 without units"):
        models.remove_units(model, ["layer1.0", "layer1.1", "layer1.2"])
    with pytest.raises(ValueError, match=r"\['layer4.0'\] are not units of CifarResNet"):
        models.remove_units(model, ["layer4.0"])


def test_unit_table_delta_q():
    model = models.build("resnet20", width=0.5)
    q = [0.10, 0.12, 0.13, 0.20, 0.40, 0.41, 0.40, 0.60, 0.70, 0.71]
    table = pruning.unit_table(model, fake_curve(model, q))
    assert table["unit"].tolist() == [u.name for u in model.units()]
    np.testing.assert_allclose(table["delta_q"], np.diff(q))       # block out minus block in
    assert table.loc[3, "unit"] == "layer2.0" and not table.loc[3, "removable"]
    vgg = models.build("vgg11", width=0.25)
    vgg_table = pruning.unit_table(vgg, fake_curve(vgg, np.linspace(0.1, 0.8, 8)))
    assert np.isnan(vgg_table.loc[0, "delta_q"])                   # first probe point: no before
    with pytest.raises(ValueError, match="the curve does not match the model"):
        pruning.unit_table(vgg, fake_curve(model, q))


def test_selection_follows_threshold_and_structure():
    model = models.build("resnet20", width=0.5)
    #        conv1 l1.0  l1.1  l1.2  l2.0  l2.1  l2.2  l3.0  l3.1  l3.2
    q = [0.10, 0.105, 0.106, 0.108, 0.20, 0.40, 0.401, 0.60, 0.59, 0.75]
    table = pruning.unit_table(model, fake_curve(model, q))
    # ΔQ: l1.0 .005 l1.1 .001 l1.2 .002 | l2.0 .092 l2.1 .2 l2.2 .001 | l3.0 .199 l3.1 -.01 l3.2 .16
    # stage 1 is entirely below 0.03: its largest-ΔQ block (layer1.0) stays
    assert pruning.select_by_threshold(table, 0.03) == ["layer1.1", "layer1.2", "layer2.2",
                                                        "layer3.1"]
    assert pruning.select_by_threshold(table, 0.0) == ["layer3.1"]
    assert pruning.select_by_threshold(table, -0.5) == []
    assert pruning.max_removable(table) == 6
    assert pruning.select_lowest(table, 2) == ["layer1.1", "layer3.1"]
    assert pruning.select_highest(table, 2) == ["layer2.1", "layer3.2"]
    picks = pruning.select_random(table, 4, seed=0)
    assert len(picks) == 4 and picks == pruning.select_random(table, 4, seed=0)
    assert not {"layer2.0", "layer3.0"} & set(picks)
    models.remove_units(model, picks)                               # always a valid network
    with pytest.raises(ValueError, match=r"threshold=1.5 is not allowed: must lie in \[-1, 1\]"):
        pruning.select_by_threshold(table, 1.5)
    with pytest.raises(ValueError, match="n=7 is not allowed"):
        pruning.select_random(table, 7)


def test_costs_match_paper_a_resnet56_row():
    # paper A's poster (docs/pruning.md): ResNet-56 −43.0 % parameters, −60.3 % FLOPs for
    # [2,3,6] blocks; counted: 0.853 M parameters / 125.5 M MACs and 0.487 M / 50.0 M
    full = models.build("resnet56", num_classes=10, in_channels=3)
    keep = {1: 2, 2: 3, 3: 6}
    pruned = models.remove_units(full, [u.name for u in full.units()
                                        if u.index_in_stage >= keep[u.stage]])
    assert pruned.num_blocks == [2, 3, 6]
    assert models.count_parameters(full) == pytest.approx(0.853e6, rel=1e-3)
    assert pruning.count_macs(full, (3, 32, 32)) == pytest.approx(125.5e6, rel=1e-3)
    assert models.count_parameters(pruned) == pytest.approx(0.487e6, rel=1e-3)
    assert pruning.count_macs(pruned, (3, 32, 32)) == pytest.approx(50.0e6, rel=1e-3)
    # a 3x3 conv from 1 to 1 channel on a 4x4 map with padding: 16 outputs x 9 MACs (+ bias free)
    conv = torch.nn.Conv2d(1, 1, 3, padding=1, bias=False)
    assert pruning.count_macs(conv, (1, 4, 4)) == 16 * 9


def test_pruned_configs_and_finetuning(tmp_path, monkeypatch):
    monkeypatch.setenv("MODLIB_CACHE_DIR", str(tmp_path))
    parent = train.TrainConfig("resnet20", dataset="digits", width=0.25, epochs=3, lr=0.05)
    inherit = pruning.pruned_config(parent, ["layer1.1"], epochs=1, train_per_class=20)
    scratch = pruning.pruned_config(parent, ["layer1.1"], epochs=1, train_per_class=20,
                                    init="scratch")
    assert inherit.parent == parent and scratch.parent is None
    assert len({parent.key(), inherit.key(), scratch.key()}) == 3
    assert "pruned" in inherit.checkpoint_path().name
    with pytest.raises(ValueError, match="init='warm'"):
        pruning.pruned_config(parent, [], init="warm")
    with pytest.raises(ValueError, match="does not match"):
        train.TrainConfig("vgg11", dataset="digits", width=0.25, parent=parent)
    row = pruning.evaluate_removal(parent, ["layer1.1"], "guided", device="cpu", epochs=1,
                                   train_per_class=20)
    base = train.load_or_train(parent, device="cpu", progress=False)
    assert row["removed"] == 1 and row["network"].num_blocks == [2, 3, 3]
    assert 0 <= row["accuracy_before"] <= 1 and 0 <= row["test_accuracy"] <= 1
    assert row["parameters"] < models.count_parameters(base.model)
    assert train.load_or_train(inherit, progress=False).from_cache
    assert row["kind"] == "guided" and row["control_seed"] is None
    original = pruning.measure_original(base.model, base.test_accuracy, (1, 8, 8))
    assert original["parameters"] == models.count_parameters(base.model)
    assert original["kind"] == "original" and original["removed"] == 0
    table = pruning.summary_table([dict(original, model="r"), dict(row, model="r")])
    assert table.loc[("r", "guided"), "parameters ↓ (%)"] > 0


#        conv1 l1.0  l1.1  l1.2  l2.0  l2.1  l2.2  l3.0  l3.1  l3.2   (resnet20 probe points)
RESNET_A = [0.10, 0.105, 0.106, 0.108, 0.20, 0.40, 0.401, 0.60, 0.59, 0.75]
# a paper-B-like curve of the same model: flat where A rises, rising where A is flat
RESNET_B = [0.30, 0.42, 0.50, 0.60, 0.61, 0.612, 0.70, 0.705, 0.80, 0.79]


@pytest.mark.parametrize("kind", pruning.CURVE_KINDS)
def test_any_curve_drives_the_same_rule(kind):
    model = models.build("resnet20", width=0.5)
    table = pruning.unit_table(model, RESNET_B, kind=kind)        # a plain list of Q values
    assert (table["curve"] == kind).all()
    np.testing.assert_allclose(table["delta_q"], np.diff(RESNET_B))
    # ΔQ: l1.0 .12 l1.1 .08 l1.2 .1 | l2.0 .01 l2.1 .002 l2.2 .088 | l3.0 .005 l3.1 .095 l3.2 -.01
    # l2.0 and l3.0 are not removable however small their ΔQ
    assert pruning.select_by_threshold(table, 0.03) == ["layer2.1", "layer3.2"]
    assert pruning.select_by_threshold(table, pruning.NATURAL_THRESHOLD) == ["layer3.2"]
    assert pruning.select_highest(table, 2) == ["layer1.0", "layer1.2"]
    # a DataFrame curve gives the same table as the list
    pd.testing.assert_frame_equal(table, pruning.unit_table(model, fake_curve(model, RESNET_B),
                                                            kind=kind))


def test_b_rule_on_a_vgg_threshold_curve_with_gaps():
    vgg = models.build("vgg11", width=0.25)   # units features.0 .2 .4 .5 .7 .8 .10 .11
    # a τ-threshold subgraph can have no edge at a shallow layer: NaN, and no ΔQ next to it
    q = [np.nan, 0.20, 0.35, 0.36, 0.50, 0.49, 0.70, 0.705]
    table = pruning.unit_table(vgg, q, kind="threshold")
    assert np.isnan(table["delta_q"].iloc[:2]).all()
    assert table.loc[table["removable"], "unit"].tolist() == ["features.5", "features.8",
                                                              "features.10", "features.11"]
    # ΔQ: .4 .15 | .5 .01 | .7 .14 | .8 −.01 | .10 .21 | .11 .005 (stage 5: both removable)
    assert pruning.select_by_threshold(table, 0.02) == ["features.5", "features.8", "features.11"]
    assert pruning.select_by_threshold(table, 0.0) == ["features.8"]
    assert pruning.select_equal_budget(table, 2) == ["features.8", "features.11"]
    assert pruning.max_removable(table) == 3                       # stage 5 keeps one unit
    with pytest.raises(ValueError, match="n=4 is not allowed"):
        pruning.select_equal_budget(table, 4)


def test_equal_budget_removes_as_many_units_as_the_reference():
    model = models.build("resnet20", width=0.5)
    table_a = pruning.unit_table(model, RESNET_A, kind="knn")
    table_b = pruning.unit_table(model, RESNET_B, kind="top-fraction")
    guided_a = pruning.select_by_threshold(table_a, 0.03)
    assert guided_a == ["layer1.1", "layer1.2", "layer2.2", "layer3.1"]
    guided_b = pruning.select_equal_budget(table_b, guided_a)
    assert len(guided_b) == len(guided_a) == 4
    # B's four lowest removable ΔQ, ascending: l3.2 −.01, l2.1 .002, l1.1 .08, l2.2 .088
    assert guided_b == ["layer1.1", "layer2.1", "layer2.2", "layer3.2"]
    models.remove_units(model, guided_b)
    for n in range(pruning.max_removable(table_b) + 1):
        assert len(pruning.select_equal_budget(table_b, n)) == n


def test_bad_curves_and_budgets_are_refused():
    model = models.build("resnet20", width=0.5)
    with pytest.raises(ValueError, match="curve kind='dense' is not allowed"):
        pruning.unit_table(model, RESNET_A, kind="dense")
    with pytest.raises(ValueError, match=r"a top-fraction curve of shape \(9,\) is not allowed: "
                                         "CifarResNet has 10 probe points"):
        pruning.unit_table(model, RESNET_A[:-1], kind="top-fraction")
    with pytest.raises(ValueError, match="10 probe points"):
        pruning.unit_table(model, np.zeros((2, 5)))
    table = pruning.unit_table(model, RESNET_A)
    with pytest.raises(ValueError, match=r"reference units \['features.3'\] are not units"):
        pruning.select_equal_budget(table, ["features.3"])
    with pytest.raises(ValueError, match="n=7 is not allowed"):
        pruning.select_equal_budget(table, 7)


def test_compare_to_control_wording():
    values = [80.0, 82.0, 84.0]                   # mean 82, s = 2, n = 3, t(0.975, 2) = 4.303
    half = 4.302653 * 2.0 * np.sqrt(1 + 1 / 3)    # the t interval of one more draw
    assert pruning.compare_to_control(82 + half + 0.1, values) == "better"
    assert pruning.compare_to_control(82 - half - 0.1, values) == "worse"
    assert pruning.compare_to_control(82 + half - 0.1, values) == "within"
    assert pruning.compare_to_control(85.0, values) == "within"
    assert pruning.compare_to_control(99.0, [80.0]) == "within"       # no spread to judge by
    with pytest.raises(ValueError, match="values=\\[\\] is not allowed"):
        pruning.compare_to_control(1.0, [])


def test_summary_table_groups_seeds_and_reduces_against_the_original():
    runs = [dict(model="m", kind="original", removed=0, accuracy_before=0.9, test_accuracy=0.9,
                 parameters=1000, MACs=2e6),
            dict(model="m", kind="guided", removed=2, accuracy_before=0.1, test_accuracy=0.88,
                 parameters=600, MACs=1.5e6)]
    runs += [dict(model="m", kind="random", removed=2, accuracy_before=0.1, test_accuracy=a,
                  parameters=p, MACs=1e6) for a, p in [(0.80, 700), (0.84, 900)]]
    table = pruning.summary_table(runs)
    guided, random = table.loc[("m", "guided")], table.loc[("m", "random")]
    assert guided["parameters ↓ (%)"] == 40.0 and guided["MACs ↓ (%)"] == 25.0
    assert np.isnan(guided["interval low (%)"])
    assert random["runs"] == 2 and random["test accuracy (%)"] == 82.0
    assert random["parameters"] == 800 and random["parameters ↓ (%)"] == 20.0
    assert random["interval low (%)"] < 80 < 84 < random["interval high (%)"]
    with pytest.raises(ValueError, match="model 'm' has no 'original' row"):
        pruning.summary_table(runs[1:])


def test_finetune_settings_follow_the_recipes():
    assert set(pruning.FINETUNE_RECIPES) == set(train.RECIPES)
    assert pruning.finetune_settings("smoke", seed=3) == dict(
        epochs=1, lr=0.02, train_per_class=50, init="inherit", seed=3)
    with pytest.raises(ValueError, match="recipe='fast' is not allowed"):
        pruning.finetune_settings("fast")


def test_side_by_side_and_the_comparison_of_two_rules():
    model = models.build("resnet20", width=0.5)
    tables = {"A": pruning.unit_table(model, RESNET_A), "B": pruning.unit_table(model, RESNET_B)}
    table = pruning.side_by_side(tables, {"A-guided": ["layer1.1"], "B-guided": ["layer3.2"]})
    assert table.loc["layer1.1", "A-guided"] and not table.loc["layer1.1", "B-guided"]
    assert table.loc["layer3.2", "ΔQ (B)"] == pytest.approx(-0.01)
    assert table["A-guided"].sum() == table["B-guided"].sum() == 1
    with pytest.raises(ValueError, match="names \\['layer9.9'\\]"):
        pruning.side_by_side(tables, {"x": ["layer9.9"]})
    vgg_table = pruning.unit_table(models.build("vgg11", width=0.25), np.linspace(0, 1, 8))
    with pytest.raises(ValueError, match="compares curves of one model"):
        pruning.side_by_side({"A": tables["A"], "V": vgg_table}, {})

    def run(kind, acc, params):
        return dict(model="m", kind=kind, removed=2, accuracy_before=0.1, test_accuracy=acc,
                    parameters=params, MACs=1e6)
    base = [run("original", 0.90, 1000), run("random", 0.80, 800), run("random", 0.82, 800),
            run("random", 0.84, 800)]      # spread: half-width 4.303 · 2 · 1.155 ≈ 9.9 points
    same = pruning.compare_rules(pruning.summary_table(
        base + [run("A-guided", 0.85, 700), run("B-guided", 0.86, 500)]), "m", "A-guided",
        "B-guided")
    assert same["accuracy"] == "equal" and same["params"] == "more"
    assert same["verdict"] == "supports" and same["spread"] == pytest.approx(9.94, abs=0.01)
    worse = pruning.compare_rules(pruning.summary_table(
        base + [run("A-guided", 0.85, 500), run("B-guided", 0.70, 700)]), "m", "A-guided",
        "B-guided")
    assert worse["accuracy"] == "lower" and worse["verdict"] == "contradicts"
    mixed = pruning.compare_rules(pruning.summary_table(
        base + [run("A-guided", 0.85, 700), run("B-guided", 0.70, 500)]), "m", "A-guided",
        "B-guided")
    assert mixed["verdict"] == "mixed"
