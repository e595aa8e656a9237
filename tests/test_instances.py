import numpy as np

from shiptoolkit.data.instances import instance_runs, instances_to_rles, label_instances
from shiptoolkit.data.rle import rle_decode


def test_components_min_area_and_diagonal_connectivity():
    mask = np.zeros((20, 20), np.uint8)
    mask[2:6, 2:6] = 1  # 16 px
    mask[10, 10] = mask[11, 11] = mask[12, 12] = 1  # a diagonal ship: one instance
    mask[18, 1] = 1  # 1 px speck
    labels = label_instances(mask)
    assert labels.max() == 3
    filtered = label_instances(mask, min_area=3)
    assert filtered.max() == 2 and filtered[18, 1] == 0 and set(np.unique(filtered)) == {0, 1, 2}


def test_instance_runs_round_trip_each_instance():
    rng = np.random.default_rng(0)
    labels = label_instances(rng.random((40, 30)) < 0.2)
    rles = instances_to_rles(labels)
    assert len(rles) == labels.max() == len(instance_runs(labels))
    for i, rle in enumerate(rles, start=1):
        assert np.array_equal(rle_decode(rle, labels.shape), (labels == i).astype(np.uint8))


def test_empty():
    assert instance_runs(np.zeros((5, 5), np.int32)) == [] and instances_to_rles(np.zeros((5, 5))) == []
