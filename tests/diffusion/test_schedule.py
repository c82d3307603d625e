import math

import pytest
import torch
from diffusers import DDPMScheduler

from difflab.diffusion import NoiseSchedule
from difflab.errors import UserError


@pytest.mark.parametrize("kind, diffusers_name", [("linear", "linear"), ("cosine", "squaredcos_cap_v2")])
def test_alphas_cumprod_match_diffusers(kind, diffusers_name):
    ours = NoiseSchedule(kind, 1000).alphas_cumprod
    theirs = DDPMScheduler(num_train_timesteps=1000, beta_schedule=diffusers_name).alphas_cumprod.double()
    assert (ours - theirs).abs().max().item() < 1e-6


def test_cosine_closed_form():
    T, s = 250, 0.008
    abar = NoiseSchedule("cosine", T).alphas_cumprod
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    expected = torch.tensor([f(t + 1) / f(0) for t in range(T)], dtype=torch.float64)
    # clipping at beta 0.999 only touches the very last step
    assert (abar[:-1] - expected[:-1]).abs().max().item() < 1e-12


def test_linear_closed_form_and_rescaling():
    T = 100
    abar = NoiseSchedule("linear", T).alphas_cumprod
    betas = torch.linspace(1e-3, 0.2, T, dtype=torch.float64)  # 1000/T scaling
    assert (abar - torch.cumprod(1 - betas, 0)).abs().max().item() < 1e-12


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("T", [10, 1000, 4000])
def test_monotone_in_unit_interval(kind, T):
    abar = NoiseSchedule(kind, T).alphas_cumprod
    assert abar.shape == (T,)
    assert (abar > 0).all() and (abar < 1).all()
    assert (abar[1:] < abar[:-1]).all()
    assert abar[-1] < 0.01  # nearly pure noise at T


def test_bad_schedule_is_one_line_error():
    with pytest.raises(UserError, match="unknown schedule 'quadratic'"):
        NoiseSchedule("quadratic")
    with pytest.raises(UserError, match="at least 2"):
        NoiseSchedule("linear", 1)
