import pytest
import torch

from difflab.diffusion import NoiseSchedule, q_sample, target, to_eps, to_x0


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(64, 1, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    noise = torch.randn(64, 1, 8, 8, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (64,), generator=g)
    return x0, noise, t, NoiseSchedule("cosine", 1000).alphas_cumprod


def test_q_sample_statistics():
    abar = NoiseSchedule("linear", 1000).alphas_cumprod
    g = torch.Generator().manual_seed(1)
    x0 = torch.full((200_000, 1, 1, 1), 0.5, dtype=torch.float64)
    t = torch.full((200_000,), 300)
    xt = q_sample(x0, t, torch.randn(x0.shape, generator=g, dtype=torch.float64), abar)
    mean, var = 0.5 * abar[300].sqrt(), 1 - abar[300]
    assert abs(xt.mean().item() - mean) < 0.005
    assert abs(xt.var().item() - var) < 0.005


@pytest.mark.parametrize("objective", ["eps", "x0", "v"])
def test_conversions_round_trip(batch, objective):
    x0, noise, t, abar = batch
    xt = q_sample(x0, t, noise, abar)
    prediction = target(objective, x0, noise, t, abar)  # a perfect network
    assert (to_eps(objective, prediction, xt, t, abar) - noise).abs().max().item() < 1e-9
    assert (to_x0(objective, prediction, xt, t, abar) - x0).abs().max().item() < 1e-9


def test_v_matches_diffusers(batch):
    from diffusers import DDPMScheduler

    x0, noise, t, _ = batch
    sched = DDPMScheduler(beta_schedule="squaredcos_cap_v2")
    ours = target("v", x0.float(), noise.float(), t, sched.alphas_cumprod)
    theirs = sched.get_velocity(x0.float(), noise.float(), t)
    assert (ours - theirs).abs().max().item() < 1e-5
