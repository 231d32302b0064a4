"""plugins/video/common.py: what the video datasets share."""

import numpy as np
import pytest
import torch

from disentangle_plugins.video import common


def test_frames_to_float_both_layouts():
    rng = np.random.default_rng(0)
    thwc = rng.integers(0, 256, size=(4, 5, 6, 3), dtype=np.uint8)
    x = common.frames_to_float(thwc)
    assert x.dtype == torch.float32 and x.shape == (4, 3, 5, 6)
    assert torch.equal(x, torch.from_numpy(thwc).permute(0, 3, 1, 2).float() / 255)
    tchw = np.ascontiguousarray(thwc.transpose(0, 3, 1, 2))
    assert torch.equal(common.frames_to_float(tchw, channels_last=False), x)
    assert float(common.frames_to_float(np.full((1, 1, 1, 1), 255, np.uint8), scale=256.0)) == 255 / 256
    with pytest.raises(ValueError, match="4 dimensions"):
        common.frames_to_float(thwc[0])


@pytest.mark.parametrize("scale", [255.0, 256.0])
def test_export_inverts_frames_to_float(scale):
    frames = np.random.default_rng(1).integers(0, 256, size=(2, 3, 4, 5, 3), dtype=np.uint8)  # (B, T, H, W, C)
    x = torch.stack([common.frames_to_float(f, scale) for f in frames])
    out = common.export(x, scale)
    assert out.dtype == np.uint8 and out.shape == frames.shape
    np.testing.assert_array_equal(out, frames if scale == 255.0 else np.minimum(frames, 255))


def test_images_are_clamped_and_export_saturates():
    x = torch.tensor([-1.0, 0.25, 2.0]).reshape(1, 1, 1, 1, 3)
    assert common.to_images(x).tolist() == [[[[[0.0, 0.25, 1.0]]]]]
    assert common.export(x).reshape(-1).tolist() == [0, 64, 255]
