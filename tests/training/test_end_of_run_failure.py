"""A failure in the end-of-run work (a full disk, an unusable judge cache) never hides that the model is saved:
the one line says where, and `difflab train --resume RUN` then does only the end-of-run work."""

import errno

import pytest

from difflab import api
from difflab.errors import UserError
from difflab.training.config import TrainConfig

TINY = dict(channels=(8, 16), batch_size=8, steps=2, num_sample_grids=0, sample_steps=2, checkpoint_minutes=100.0)


def failing(error):
    def finish_run(run_dir, **_):
        raise error
    return finish_run


@pytest.mark.parametrize("error, says", [
    (OSError(errno.ENOSPC, "No space left on device", "RUN/samples/final.png"), r"cannot write RUN/samples/final.png"),
    (UserError("cannot create difflab's cache folder /x (Not a directory); fix: set DIFFLAB_CACHE"), r"cache folder /x"),
])
def test_the_error_names_the_saved_model_and_the_resume(tmp_path, monkeypatch, error, says):
    real = api.finish_run
    monkeypatch.setattr(api, "finish_run", failing(error))
    run_dir = tmp_path / "run"
    with pytest.raises(UserError, match=says) as caught:
        api.train(TrainConfig(**TINY), out=run_dir, progress=False, evaluate=False)
    line = str(caught.value)
    assert "\n" not in line and f"saved in {run_dir}" in line and f"difflab train --resume {run_dir}" in line
    assert (run_dir / "ema.safetensors").is_file()
    monkeypatch.setattr(api, "finish_run", real)
    resumed = api.train(resume=run_dir, progress=False, evaluate=False)  # only the end-of-run work is left
    assert (run_dir / "report.html").is_file() and resumed.folder.read_config().steps == 2
