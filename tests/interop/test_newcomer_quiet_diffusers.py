"""Issue 20: exporting a run and loading it back prints nothing from diffusers (no accelerate nag, no
"Expected types for unet"), and the type-check filter drops only that one message."""

from __future__ import annotations

import logging
import warnings

import pytest

pytest.importorskip("diffusers")

from difflab.cli import main
from difflab.interop import diffusers_model
from difflab.interop.pipeline import PipelineRun


class Records(logging.Handler):
    """diffusers' loggers do not propagate to the root logger (caplog misses them): listen on its own."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            self.messages.append(record.getMessage())


def test_export_and_load_print_nothing_from_third_parties(tiny_run, tmp_path, capfd):
    from diffusers import DiffusionPipeline
    from diffusers.utils import is_accelerate_available
    from diffusers.utils import logging as diffusers_logging

    records, log = Records(), logging.getLogger("diffusers")
    log.addHandler(records)
    diffusers_logging.disable_progress_bar()  # "Loading pipeline components" is a bar, not a warning
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = tmp_path / "exported"
            assert main(["export", str(tiny_run.path), "--diffusers", str(out)]) == 0
            loaded = PipelineRun.load(out)
            diffusers_model.DifflabUNet2DModel.from_pretrained(out / "unet")
            pipe = DiffusionPipeline.from_pretrained(out, low_cpu_mem_usage=is_accelerate_available())
    finally:
        log.removeHandler(records)
        diffusers_logging.enable_progress_bar()
    assert len(loaded.class_names) == 10 and type(pipe.unet).__name__ == "DifflabUNet2DModel"
    assert records.messages == [] and [str(w.message) for w in caught] == []
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out.count("\n") == 1 and captured.out.startswith(f"wrote {out}")  # export's one line


def test_only_the_duck_typed_unet_message_is_dropped():
    check = diffusers_model._DuckTypedUNet()

    def record(message: str) -> logging.LogRecord:
        return logging.LogRecord("diffusers.pipelines.pipeline_utils", logging.WARNING, __file__, 1, message, None, None)

    assert not check.filter(record("Expected types for unet: (<class 'UNet2DModel'>,), got "
                                   "<class 'difflab.interop.diffusers_model.DifflabUNet2DModel'>."))
    assert check.filter(record("Expected types for unet: (<class 'UNet2DModel'>,), got <class 'MyUNet'>."))
    assert check.filter(record("Expected types for vae: ..., got DifflabUNet2DModel"))
    filters = logging.getLogger("diffusers.pipelines.pipeline_utils").filters
    assert sum(isinstance(f, diffusers_model._DuckTypedUNet) for f in filters) == 1  # installed once
