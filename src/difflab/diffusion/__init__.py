"""Diffusion: schedules, the forward process and targets, solvers, guidance and the sampling loop."""

from difflab.diffusion.guidance import classifier_free, model_noise_estimate
from difflab.diffusion.objectives import OBJECTIVES, q_sample, target, to_eps, to_x0
from difflab.diffusion.sampling import Step, sample
from difflab.diffusion.schedule import SCHEDULES, NoiseSchedule
from difflab.diffusion.solvers import SOLVERS, make_solver, timesteps

__all__ = [
    "OBJECTIVES", "SCHEDULES", "SOLVERS", "NoiseSchedule", "Step", "classifier_free", "make_solver",
    "model_noise_estimate", "q_sample", "sample", "target", "timesteps", "to_eps", "to_x0",
]
