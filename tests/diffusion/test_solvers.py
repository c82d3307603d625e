"""Each solver against diffusers' scheduler of the same name: the largest absolute difference."""

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from difflab.diffusion import NoiseSchedule, make_solver, sample, timesteps
from difflab.errors import UserError

T = 1000
SHAPE = (4, 1, 6, 6)


ABAR = NoiseSchedule("cosine", T).alphas_cumprod


def fake_eps(x, t):
    """A smooth deterministic 'network' whose clean-image guess stays in [-1, 1] (as a trained one's does),
    so both implementations see the same, well-conditioned estimates."""
    a = ABAR[t].view(-1, 1, 1, 1)
    x0_guess = 0.9 * torch.tanh(x + torch.cos(t.float().view(-1, 1, 1, 1) / 100))
    return (x - a.sqrt() * x0_guess) / (1 - a).sqrt()


def run_ours(name, ts, x, seed, **options):
    solver = make_solver(name, NoiseSchedule("cosine", T).alphas_cumprod, **options)
    steps = []
    out = sample(fake_eps, x.clone(), ts, solver, generator=torch.Generator().manual_seed(seed),
                 callback=lambda s: steps.append(s.x.clone()))
    return out, steps


def largest_update_difference(scheduler, name, x, seed, step_kwargs=None, **options):
    """Walk diffusers' chain; at every step give our solver the same x_t and ε̂ (and the same noise
    stream) and return the largest absolute difference of the two updates."""
    for attr in ("alphas_cumprod", "sigmas", "alpha_t", "sigma_t", "lambda_t", "final_alpha_cumprod"):
        if torch.is_tensor(getattr(scheduler, attr, None)):  # compare arithmetic, not float32 rounding
            setattr(scheduler, attr, getattr(scheduler, attr).double())
    x = x.double()
    ours = make_solver(name, scheduler.alphas_cumprod, **options)  # the same (float32-built) schedule
    g_theirs, g_ours = torch.Generator().manual_seed(seed), torch.Generator().manual_seed(seed)
    ts = scheduler.timesteps.tolist() + [-1]
    worst = 0.0
    for i, t in enumerate(ts[:-1]):
        eps = fake_eps(x, torch.full((x.shape[0],), t))
        theirs = scheduler.step(eps, t, x, generator=g_theirs, **(step_kwargs or {})).prev_sample
        mine, _ = ours.step(x, t, ts[i + 1], eps, generator=g_ours)
        worst = max(worst, (mine - theirs).abs().max().item())
        x = theirs
    return worst


def start(seed=0):
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("n", [10, 50, 1000])
def test_ddpm_matches_diffusers(n):
    sched = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=True)
    sched.set_timesteps(n)
    assert largest_update_difference(sched, "ddpm", start(), seed=3) < 1e-9


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_matches_diffusers(eta):
    sched = DDIMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", clip_sample=True, set_alpha_to_one=True)
    sched.set_timesteps(20)
    step_kwargs = dict(eta=eta, use_clipped_model_output=True)
    assert largest_update_difference(sched, "ddim", start(), seed=5, step_kwargs=step_kwargs, eta=eta) < 1e-9


@pytest.mark.parametrize("n", [5, 10, 20])
def test_dpm_solver_pp_2m_matches_diffusers(n):
    sched = DPMSolverMultistepScheduler(
        num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", algorithm_type="dpmsolver++", solver_order=2,
        timestep_spacing="trailing", final_sigmas_type="zero", lower_order_final=True,
    )
    sched.set_timesteps(n)
    assert sched.timesteps.tolist() == timesteps(T, n)  # our default spacing is diffusers' "trailing"
    # diffusers builds its DPM sigmas in float32 at set_timesteps, hence the looser bound
    assert largest_update_difference(sched, "dpm++", start(), seed=0, clip_x0=False) < 1e-6


def test_timesteps_trailing_and_full():
    assert timesteps(1000, 1000) == list(range(999, -1, -1))
    assert timesteps(1000, 4) == [999, 749, 499, 249]
    with pytest.raises(UserError, match="steps must be in 1..1000, got 0"):
        timesteps(1000, 0)


def test_same_generator_same_samples_and_unknown_solver():
    a, _ = run_ours("ddpm", timesteps(T, 10), start(), seed=7)
    b, _ = run_ours("ddpm", timesteps(T, 10), start(), seed=7)
    c, _ = run_ours("ddpm", timesteps(T, 10), start(), seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(UserError, match="unknown solver 'euler'"):
        make_solver("euler", NoiseSchedule().alphas_cumprod)
