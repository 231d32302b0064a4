"""flow-grid's ``raft`` backend: shapes with random RAFT weights (no download), clear errors without a file."""

import numpy as np
import pytest
import torch

import disentangle
from disentangle import testing
from disentangle_plugins.video import raft_flow
from disentangle_plugins.video.flow_grid import FlowGrid, FlowGridConfig
from disentangle_plugins.video.moving_shapes import MovingShapes, MovingShapesConfig


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    from torchvision.models.optical_flow import raft_small

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("raft") / "raft_small_random.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    return path


@pytest.mark.slow
def test_raft_labels_have_the_flow_grid_shape(weights, tmp_path):
    data = MovingShapes(MovingShapesConfig(num_train=1, num_test=1, seq_len=3, resolution=16),
                        disentangle.BuildContext(cache_dir=tmp_path))
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 16, 16), seq_len=3)
    task = FlowGrid(FlowGridConfig(method="raft", weights=str(weights), raft_size="small", grid=2, top_k=1), ctx)
    task.prepare(data, ctx)
    assert task.labels.shape == (1, 3, 4)
    assert torch.all(task.labels.sum(-1) == 1)
    assert task.cache_path.exists()
    mags = raft_flow.sequence_magnitudes(raft_flow.load_raft(str(weights), "small", torch.device("cpu")),
                                         data.split("train")[0]["x"], iterations=2)
    assert mags.shape == (3, 128, 128) and np.isfinite(mags).all()


def test_raft_without_weights_is_a_clear_error(tmp_path, weights):
    ctx = testing.tiny_context(tmp_path, feature_shape=(3, 16, 16), seq_len=3)
    with pytest.raises(disentangle.DisentangleError, match="needs a weights file") as err:
        FlowGrid(FlowGridConfig(method="raft"), ctx)
    assert "torch.save" in err.value.hint
    with pytest.raises(disentangle.DisentangleError, match="does not exist"):
        FlowGrid(FlowGridConfig(method="raft", weights=str(tmp_path / "nope.pth")), ctx)
    with pytest.raises(disentangle.DisentangleError, match="not a state_dict of torchvision's raft_large"):
        raft_flow.load_raft(str(weights), "large", torch.device("cpu"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_text("not weights")
    with pytest.raises(disentangle.DisentangleError, match="flow-grid: cannot read the RAFT weights") as err:
        raft_flow.load_raft(str(garbage), "large", torch.device("cpu"))
    assert "weights_only" not in err.value.message and "torch.save" in err.value.hint
