"""A user's own network trains, saves and samples through the public API — no monkeypatching."""

import torch

import difflab
from difflab.training.config import TrainConfig


class TinyConvNet(torch.nn.Module):
    """Not a U-Net: two convolutions and a class embedding, built from the run's ModelSpec."""

    def __init__(self, spec):
        super().__init__()
        c = spec.in_channels
        self.embed = torch.nn.Embedding(spec.num_classes + 1, 8)
        self.inp = torch.nn.Conv2d(c, 8, 3, padding=1)
        self.out = torch.nn.Conv2d(8, c, 3, padding=1)

    def forward(self, x, t, cond):
        h = self.inp(x) + self.embed(cond)[:, :, None, None] + (t.float() / 1000)[:, None, None, None]
        return self.out(torch.nn.functional.silu(h))


def test_a_factory_network_trains_loads_and_samples(tmp_path):
    config = TrainConfig(steps=6, batch_size=8, log_every=2, warmup_steps=2, num_sample_grids=0, sample_steps=2,
                         checkpoint_minutes=100.0)
    run = difflab.train(config, out=tmp_path / "run", progress=False, evaluate=False, model_factory=TinyConvNet)
    assert isinstance(run.model, TinyConvNet) and run.model.spec.num_classes == 10
    again = difflab.load_run(run.path, model_factory=TinyConvNet)
    images = again.sample([3, 7], seed=1)
    assert images.shape == (2, 1, 28, 28) and torch.isfinite(images).all()
    assert torch.equal(images, run.sample([3, 7], seed=1))  # the saved weights are the trained ones
    assert (run.path / "samples" / "final.png").is_file()
