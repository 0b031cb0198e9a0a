"""Range checks on what notebook 01_train_models records under the smoke profile."""

def check(m):
    assert m["profile"] == "smoke" and m["dataset"] == "fashion-mnist"
    assert set(m["models"]) == {"vgg11", "resnet20"}
    for arch, record in m["models"].items():
        # two epochs on 1,000 images: far above chance (0.1), far below a full run
        assert 0.3 < record["test_accuracy"] < 0.95, arch
        assert 0 < record["final_train_loss"] < 2.3, arch
