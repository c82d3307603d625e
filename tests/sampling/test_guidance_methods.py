"""Guidance methods of the `Sampler`: CFG limited to an interval, CFG rescale, autoguidance, and their bad input."""

import pytest
import torch

from difflab.diffusion import NoiseSchedule
from difflab.diffusion.guidance import Guidance, guided_estimate, model_noise_estimate
from difflab.diffusion.solvers import DPMSolverPP2M
from difflab.errors import UserError
from difflab.sampling import Condition, Sampler


class Recorder:
    """A conditional estimate whose output says which branch ran: +1 per image for a class, -1 for null."""

    def __init__(self, null: int):
        self.null, self.calls = null, []

    def __call__(self, x, t, cond):
        self.calls.append((int(t[0]), cond.tolist()))
        sign = torch.where(cond == self.null, -1.0, 1.0).view(-1, 1, 1, 1)
        return sign * torch.ones_like(x)


def _run(guidance, ts):
    rec = Recorder(null=10)
    cond, null = torch.tensor([3, 4]), torch.tensor([10, 10])
    estimate = guided_estimate(rec, cond, null, guidance)
    outs = [estimate(torch.zeros(2, 1, 2, 2), torch.full((2,), t)) for t in ts]
    return rec, outs


def test_cfg_inside_the_interval_only():
    rec, outs = _run(Guidance(3.0, interval=(200, 700)), [900, 700, 450, 200, 100])
    batch_sizes = [len(c) for _, c in rec.calls]
    assert batch_sizes == [2, 4, 4, 4, 2]  # one forward outside [200, 700], both branches inside
    assert [float(o[0, 0, 0, 0]) for o in outs] == [1.0, 5.0, 5.0, 5.0, 1.0]  # eps_u + 3 (eps_c - eps_u) = -1 + 3 * 2


def test_cfg_rescale_matches_the_conditional_std():
    cond, null = torch.tensor([1]), torch.tensor([10])
    gen = torch.Generator().manual_seed(0)
    branches = {1: torch.randn(1, 1, 8, 8, generator=gen), 10: 0.3 * torch.randn(1, 1, 8, 8, generator=gen)}

    def estimate(x, t, c):
        return torch.cat([branches[int(v)] for v in c])

    x, t = torch.zeros(1, 1, 8, 8), torch.full((1,), 500)
    plain = guided_estimate(estimate, cond, null, Guidance(5.0))(x, t)
    full = guided_estimate(estimate, cond, null, Guidance(5.0, rescale=1.0))(x, t)
    half = guided_estimate(estimate, cond, null, Guidance(5.0, rescale=0.5))(x, t)
    assert torch.allclose(full.std(), branches[1].std(), rtol=1e-5)  # φ = 1: the conditional branch's std
    assert torch.allclose(half, 0.5 * (plain + full), atol=1e-6)  # φ mixes linearly
    assert not torch.allclose(plain.std(), branches[1].std(), rtol=0.1)


def test_autoguidance_steers_away_from_the_guide_under_the_same_condition():
    seen = {}

    def strong(x, t, c):
        seen["strong"] = c
        return torch.full_like(x, 2.0)

    def weak(x, t, c):
        seen["weak"] = c
        return torch.full_like(x, 0.5)

    cond = torch.tensor([7, 7])
    out = guided_estimate(strong, cond, torch.tensor([10, 10]), Guidance(2.5, method="auto"), guide=weak)(
        torch.zeros(2, 1, 2, 2), torch.full((2,), 500))
    assert torch.allclose(out, torch.full_like(out, 0.5 + 2.5 * 1.5))
    assert torch.equal(seen["weak"], cond) and torch.equal(seen["strong"], cond)  # no null branch
    uncond = guided_estimate(strong, None, None, Guidance(2.0, method="auto"), guide=weak)(
        torch.zeros(1, 1, 2, 2), torch.full((1,), 500))
    assert torch.allclose(uncond, torch.full_like(uncond, 3.5))  # an unconditional model is guided too


def test_autoguidance_without_a_guide_says_how_to_fix(tiny_run):
    sampler = tiny_run.sampler(guidance_method="auto", guidance=2.0, steps=2)
    with pytest.raises(UserError, match="guide network.*--guidance-method cfg"):
        sampler.generate(tiny_run.model, tiny_run.alphas_cumprod, Condition.classes([1, 2], 10))


def test_autoguidance_with_the_same_network_is_plain_sampling(tiny_run):
    """ε_g + w (ε - ε_g) with g = the model itself is ε: the method composes with the real sampler."""
    cond = Condition.classes([1, 2, 3], 10)
    auto = Sampler(steps=3, guidance=2.0, guidance_method="auto", seed=1, precision="fp32").generate(
        tiny_run.model, tiny_run.alphas_cumprod, cond, guide=tiny_run.model)
    plain = Sampler(steps=3, guidance=1.0, seed=1, precision="fp32").generate(tiny_run.model, tiny_run.alphas_cumprod, cond)
    assert torch.allclose(auto, plain, atol=1e-5)


def test_v_prediction_gives_x0_exactly_at_the_noisiest_step():
    """x̂₀ of a v-network through ε̂ and the solver equals √ᾱ x_t − √(1−ᾱ) v (it lost ~2.6e-3 in float32)."""
    abar = NoiseSchedule("cosine", 1000).alphas_cumprod
    gen = torch.Generator().manual_seed(0)
    x, v = torch.randn(4, 1, 8, 8, generator=gen), torch.randn(4, 1, 8, 8, generator=gen)
    t = torch.full((4,), 999)
    estimate = model_noise_estimate(lambda x_, t_, c: v, "v", abar)
    x0 = DPMSolverPP2M(abar, clip_x0=False).predict_x0(x, 999, estimate(x, t))
    a, s = abar[999].double().sqrt(), (1 - abar[999].double()).sqrt()
    direct = a * x.double() - s * v.double()
    assert (x0 - direct).abs().max() < 1e-6


@pytest.mark.parametrize("changes, match", [
    ({"guidance_interval": (0.7, 0.2)}, "--guidance-interval must be LO,HI with 0 <= LO <= HI <= 1"),
    ({"guidance_interval": (float("nan"), 0.5)}, "--guidance-interval must be LO,HI"),
    ({"guidance_interval": (-0.1, 0.5)}, "--guidance-interval must be LO,HI"),
    ({"guidance_interval": "0.2"}, "--guidance-interval must be two numbers"),
    ({"guidance_interval": "a,b"}, "--guidance-interval must be two numbers"),
    ({"guidance_rescale": 1.5}, r"--guidance-rescale must be a number in \[0, 1\]"),
    ({"guidance_rescale": float("inf")}, "--guidance-rescale must be"),
    ({"guidance_method": "magic"}, "unknown guidance method 'magic'; use one of cfg, auto"),
    ({"guidance": "3"}, "--guidance must be a number")])
def test_bad_guidance_settings_are_refused_with_one_line(changes, match):
    with pytest.raises(UserError, match=match):
        Sampler(**changes)


def test_interval_from_text_and_on_the_schedule():
    sampler = Sampler(guidance_interval="0.2,0.7")
    assert sampler.guidance_interval == (0.2, 0.7)
    assert sampler.guidance_for(1000).interval == (200, 699)
    assert Sampler(guidance_interval=(0.0, 1.0)).guidance_for(1000).interval is None  # every step: no test per step
    assert Sampler().guidance_for(1000).interval == (500, 999)  # the default: the noisier half


def test_autoguidance_on_top_of_interval_cfg_is_the_sum_of_both_pulls():
    """ε_c + (w_cfg − 1)(ε_c − ε_u) inside the interval, + (w_auto − 1)(ε_c − ε_g) on every step."""
    strong_value, null_value, guide_value = 2.0, -1.0, 0.5

    def estimate(x, t, c):
        return torch.where((c == 10).view(-1, 1, 1, 1), null_value, strong_value) * torch.ones_like(x)

    def guide(x, t, c):
        return torch.full_like(x, guide_value)

    cond, null = torch.tensor([3]), torch.tensor([10])
    g = Guidance(1.6, interval=(500, 999), autoguidance=3.0)
    estimate_fn = guided_estimate(estimate, cond, null, g, guide=guide)
    inside = estimate_fn(torch.zeros(1, 1, 2, 2), torch.full((1,), 700))
    outside = estimate_fn(torch.zeros(1, 1, 2, 2), torch.full((1,), 100))
    auto_pull = 2.0 * (strong_value - guide_value)
    assert torch.allclose(inside, torch.full_like(inside, strong_value + 0.6 * (strong_value - null_value) + auto_pull))
    assert torch.allclose(outside, torch.full_like(outside, strong_value + auto_pull))
    with pytest.raises(UserError, match="--autoguidance needs the run's guide network"):
        guided_estimate(estimate, cond, null, g)


@pytest.mark.parametrize("changes, match", [
    ({"autoguidance": 0.5}, r"--autoguidance must be a number in \[1, 100\]"),
    ({"autoguidance": float("nan")}, "--autoguidance must be"),
    ({"autoguidance": 2.0, "guidance_method": "auto"}, "--autoguidance adds autoguidance to CFG")])
def test_bad_autoguidance_is_refused_with_one_line(changes, match):
    with pytest.raises(UserError, match=match):
        Sampler(**changes)


def test_autoguidance_on_top_of_cfg_through_a_run(tiny_run):
    """A run trained by this difflab has its guide; without one the sampler says how to fix it."""
    assert tiny_run.guide is not None
    both = tiny_run.sample([1, 2], steps=2, autoguidance=2.0)
    assert both.shape == (2, *tiny_run.spec.image_shape) and torch.isfinite(both).all()
    assert not torch.equal(both, tiny_run.sample([1, 2], steps=2))
    with pytest.raises(UserError, match="autoguidance needs the run's guide network.*--autoguidance 1"):
        tiny_run.sampler(steps=2, autoguidance=2.0).generate(tiny_run.model, tiny_run.alphas_cumprod,
                                                             Condition.classes([1, 2], 10))


def test_a_runs_default_sampler_carries_its_autoguidance_and_falls_back_without_a_guide(tiny_run, tmp_path):
    """config.json's autoguidance reaches `Run.sampler`; autoguidance alone (method auto) takes its strength
    from --guidance; a run without guide.safetensors samples with CFG only instead of failing."""
    import shutil

    import difflab

    assert tiny_run.sampler().autoguidance == tiny_run.config.autoguidance
    assert tiny_run.sampler(guidance_method="auto").autoguidance == 1.0
    assert tiny_run.sampler(autoguidance=1.5).autoguidance == 1.5
    copy = shutil.copytree(tiny_run.path, tmp_path / "no-guide")
    (copy / "guide.safetensors").unlink()
    old = difflab.load_run(copy)
    assert old.guide is None and old.sampler().autoguidance == 1.0
    assert torch.isfinite(old.sample([1, 2], steps=2)).all()
