"""The empirical model's score is the gradient of log p_sigma of the smoothed image set."""
import math

import pytest
import torch

from configs import mnist_empirical_pds
from models.checkpoint import load_score_model
from models.empirical import EmpiricalScore


def test_score_is_grad_log_density():
    g = torch.Generator().manual_seed(0)
    points = torch.rand((5, 1, 4, 4), generator=g, dtype=torch.float64)
    model = EmpiricalScore(points).double()
    x = torch.rand((3, 1, 4, 4), generator=g, dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([0.1, 0.3, 1.0], dtype=torch.float64)
    d2 = ((x.flatten(1)[:, None] - points.flatten(1)[None]) ** 2).sum(-1)
    log_p = torch.logsumexp(-d2 / (2 * sigma[:, None] ** 2), dim=1)
    grad, = torch.autograd.grad(log_p.sum(), x)
    assert torch.allclose(model(x.detach(), sigma.float()).double(), grad, rtol=1e-4, atol=1e-4)


def test_loads_the_shipped_image_set():
    config = mnist_empirical_pds.get_config()
    model = load_score_model(config.model.data, config)
    assert model.points.shape == (1000, 784) and 0 <= float(model.points.min()) and float(model.points.max()) == 1
    x = model.points[:2].view(2, 1, 28, 28)
    assert float(model(x, 1e-3).abs().max()) < 1e-2   # a training image is a mode
    config.data.image_size = 32
    with pytest.raises(ValueError, match='the config samples'):
        load_score_model(config.model.data, config)
