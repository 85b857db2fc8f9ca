"""``TrainConfig`` and the data forms: the study builds one config from its arguments, and
``study.json`` and every run's settings take their shared fields from it and the data,
with the settings hashes of the release before the config (a hash keys a run folder:
resuming depends on it)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from neurn.data.batches import ArrayBatches
from neurn.study import Study
from neurn.study.config import TrainConfig
from neurn.study.data import DigitData, FolderData, StudyData, study_data
from neurn.study.settings import settings_digest
from neurn.study.train import schedule

# (settings hash of the first run, study fingerprint), as the release before TrainConfig
# wrote them for these arguments
GOLDEN = {
    "default": (dict(variants=["baseline"], steps=40, evals=2, batch_size=32,
                     targets=["optdigits"], eval_limit=200, train_limit=600),
                "886f1f121d9a9c7a", "35da114c7d035e0c"),
    "augment": (dict(variants=["neurn"], seeds=[3], steps=6, evals=2, batch_size=8,
                     augment=True, img_size=24, targets=["optdigits", "usps-gen"]),
                "554ed4018c3502b7", "c0a6bf106e38dfda"),
    "epochs_sgd": (dict(variants=["randconv"], epochs=3, batch_size=16, optimizer="sgd",
                        lr=0.01, weight_decay=0.0, data_seed=5, targets=["svhn-gen"]),
                   "d23217364b538dfd", "9e7b3dd03b412570"),
}


def _study(tmp_path, **kwargs) -> Study:
    return Study(["convnet"], device="cpu", out_dir=tmp_path / "s", progress=False, **kwargs)


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_settings_hashes_are_those_of_the_release_before_the_config(tmp_path, case):
    kwargs, digest, fingerprint = GOLDEN[case]
    study = _study(tmp_path, **kwargs)
    assert settings_digest(study._settings(study.grid()[0])) == digest
    assert study.fingerprint() == fingerprint


def test_the_study_builds_one_config_from_its_arguments(tmp_path):
    study = _study(tmp_path, steps=40, evals=2, batch_size=32, lr=2e-3, threads=1)
    config = study.config
    assert config == TrainConfig(epochs=None, steps=40, evals=2, batch_size=32, lr=2e-3,
                                 weight_decay=0.05, optimizer="adamw",
                                 device=torch.device("cpu"), threads=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.lr = 1.0  # type: ignore[misc]
    assert _study(tmp_path).config.epochs == 10  # neither epochs nor steps given


def test_study_json_and_run_settings_share_the_config_fields(tmp_path):
    study = _study(tmp_path, steps=6, evals=2, batch_size=8, augment=True, targets=["optdigits"])
    described, settings = study.describe(), study._settings(study.grid()[0])
    shared = ["source", "targets", *TrainConfig.HASHED, "data_dir", "eval_limit",
              "train_limit", "data_seed"]
    assert all(described[k] == settings[k] for k in shared)
    assert [k for k in settings if k in shared] == shared == [k for k in described if k in shared]
    assert described["device"] == "cpu" and "device" not in settings
    assert described["augment"] is settings["augment"] is True
    assert described["workers"] == study.config.num_workers == 0


def test_study_data_picks_the_digit_form_and_the_study_keeps_no_copy(tmp_path):
    digits = study_data("mnist", ["optdigits"])
    assert isinstance(digits, DigitData) and isinstance(digits, StudyData)
    assert not isinstance(digits, FolderData)
    assert not digits.folders and not digits.streams and digits.img_size == 32
    assert digits.source == "mnist" and digits.targets == ["optdigits"]
    study = _study(tmp_path, targets=["optdigits"])
    assert study.data is study.groups[None] and study.data.targets == ["optdigits"]
    assert not any(hasattr(study, name) for name in ("source", "targets", "data_seed", "lr"))


def test_schedule_reads_the_config():
    data = {"train": ArrayBatches(np.zeros((100, 3, 8, 8), np.uint8), np.zeros(100, np.int64))}
    by_steps = TrainConfig(epochs=None, steps=10, evals=3, batch_size=8, lr=1e-3,
                           weight_decay=0.0, optimizer="adamw", device=torch.device("cpu"))
    assert schedule(by_steps, data) == (3, 4)
    by_epochs = dataclasses.replace(by_steps, epochs=2, steps=None)
    assert schedule(by_epochs, data) == (2, 12)
