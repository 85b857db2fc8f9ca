"""What the study reads off the machine before it trains: the shape and image size of
image folders (a dataset root where a domain belongs, and the reverse, named as such),
and a thread count that leaves busy CPUs alone.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from neurn.data.folder import FolderDomain, domains_from_root, probe_image_size
from neurn.study.torch_settings import busy_cpus, oversubscribed, pick_threads

CLASSES = ("cat", "dog")


def make_domain(root, sizes=((8, 8),) * 2):
    """root/<class>/<image>, one PNG per size (width, height) in each class."""
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for i, size in enumerate(sizes):
            Image.new("RGB", size, (40 * i, 90, 200)).save(root / name / f"img{i}.png")
    return root


@pytest.fixture
def dataset(tmp_path):
    make_domain(tmp_path / "art")
    make_domain(tmp_path / "photo")
    return tmp_path


def test_a_dataset_root_passed_as_a_domain_names_the_mistake_and_a_domain(dataset):
    expected = (f"{dataset} looks like a dataset root (its subfolders art, photo are "
                f"domains, each with class folders); pass one domain ({dataset / 'art'}) "
                f"or use it as the dataset root (--dataset)")
    with pytest.raises(ValueError, match=re.escape(expected)):
        FolderDomain(dataset)


def test_a_domain_passed_as_a_dataset_root_names_the_mistake(dataset):
    expected = (f"{dataset / 'art'} looks like a single domain (its subfolders are classes "
                f"holding images); pass it as a domain (--source/--targets), not as a "
                f"dataset root (--dataset)")
    with pytest.raises(ValueError, match=re.escape(expected)):
        domains_from_root(dataset / "art")


def test_an_empty_class_keeps_its_own_message(dataset):
    (dataset / "art" / "zebra").mkdir()
    with pytest.raises(ValueError, match="class folder without images"):
        FolderDomain(dataset / "art")
    with pytest.raises(ValueError, match="class folder without images"):
        domains_from_root(dataset)


def test_a_domain_and_a_root_in_the_right_places_still_load(dataset):
    assert FolderDomain(dataset / "photo").classes == CLASSES
    domains = domains_from_root(dataset)
    assert list(domains) == ["art", "photo"] and len(domains["art"]) == 4


def test_probe_reads_the_image_side(tmp_path):
    domain = FolderDomain(make_domain(tmp_path / "digits", sizes=[(32, 32)] * 3))
    assert probe_image_size([domain]) == 32
    assert probe_image_size([tmp_path / "digits"]) == 32  # a folder is listed first


def test_probe_takes_the_median_of_the_shorter_sides(tmp_path):
    mixed = make_domain(tmp_path / "mixed", sizes=[(30, 40), (40, 30), (64, 64)])
    assert probe_image_size([mixed]) == 30  # shorter sides 30, 30, 30, 30, 64, 64
    small = make_domain(tmp_path / "small", sizes=[(20, 20)] * 2)
    assert probe_image_size([small, mixed]) == 30  # both folders count


def test_probe_samples_reproducibly_and_skips_unreadable_headers(tmp_path):
    sides = np.arange(16, 56, 2)
    root = make_domain(tmp_path / "many", sizes=[(int(s), int(s)) for s in sides])
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    draws = [probe_image_size([root], sample=5, seed=seed) for seed in (0, 0, 1, 2, 3)]
    assert draws[0] == draws[1] and len(set(draws)) > 1
    assert probe_image_size([root], sample=1000) == int(np.median(sides))


def test_probe_with_no_readable_header_names_the_folder(tmp_path):
    root = tmp_path / "broken"
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        (root / name / "a.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(ValueError, match=re.escape(f"{root}: none of the sampled images")):
        probe_image_size([root])


@pytest.mark.parametrize("load,cpus,threads,note", [
    (0.1, 2, 2, "2 threads (2 CPUs, load 0.1)"),
    (1.0, 2, 1, "1 thread (2 CPUs, load 1.0: 1 kept free)"),
    (0.5, 2, 1, "1 thread (2 CPUs, load 0.5: 1 kept free)"),  # half up, not to even
    (5.3, 4, 1, "1 thread (4 CPUs, load 5.3: 3 kept free)"),  # never fewer than 1
    (0.0, 1, 1, "1 thread (1 CPU, load 0.0)"),
])
def test_the_default_thread_count_leaves_busy_cpus_alone(load, cpus, threads, note):
    assert pick_threads(None, load=load, cpus=cpus) == (threads, note)


def test_a_requested_count_is_kept_and_warned_about_when_too_many():
    assert pick_threads(2, load=0.1, cpus=2) == (2, "2 threads (requested, 2 CPUs, load 0.1)")
    assert pick_threads(2, load=1.0, cpus=2) == (
        2, "2 threads (requested, 2 CPUs, load 1.0); warning: oversubscribed "
           "(load 1.0 on 2 CPUs); pass --threads 1")
    threads, note = pick_threads(8, load=0.0, cpus=4)
    assert threads == 8 and note.endswith("warning: oversubscribed (load 0.0 on 4 CPUs); "
                                          "pass --threads 4")
    with pytest.raises(ValueError, match="threads must be an integer >= 1"):
        pick_threads(0, load=0.0, cpus=2)


def test_oversubscribed_is_none_when_the_threads_fit():
    assert oversubscribed(1, load=1.0, cpus=2) is None
    assert oversubscribed(4, load=0.4, cpus=4) is None
    assert oversubscribed(3, load=2.0, cpus=4) == ("warning: oversubscribed (load 2.0 on "
                                                   "4 CPUs); pass --threads 2")


def test_busy_cpus_samples_proc_stat_then_the_load_average(monkeypatch):
    assert busy_cpus(1.5) == 1.5
    # /proc/stat: 100 jiffies pass, 50 of them idle -> half of every CPU is busy
    times = iter([(1000, 400), (1100, 450)])
    monkeypatch.setattr("neurn.study.torch_settings._cpu_times", lambda: next(times))
    monkeypatch.setattr("neurn.study.torch_settings.default_threads", lambda: 2)
    assert busy_cpus(window=0) == 1.0

    def no_proc():
        raise OSError("no /proc")

    monkeypatch.setattr("neurn.study.torch_settings._cpu_times", no_proc)
    monkeypatch.setattr("os.getloadavg", lambda: (0.7, 0.2, 0.1))
    assert busy_cpus(window=0) == 0.7
    monkeypatch.delattr("os.getloadavg")  # Windows has no load average
    assert busy_cpus(window=0) == 0.0
