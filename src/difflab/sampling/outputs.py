"""Where generated images go, chunk by chunk: a PNG grid preview, a uint8 .npz, an image folder.

    labels, nrow = sample_labels(None, 1000, run.num_classes)
    sink = Outputs(run, labels=labels, n=1000, nrow=nrow, grid="samples.png", npz="s.npz", folder=None, info={})
    consume(run.sample_chunks(labels, chunk_size=500), sink, show=True)
    sink.finish()

Memory stays bounded: the grid keeps only its own images, the .npz buffer is uint8 (N·H·W·C bytes,
7.8 MB for 10,000 MNIST digits), and the folder is written chunk by chunk.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch

from difflab.errors import UserError
from difflab.run import files

GRID_MAX = 100  # the PNG grid is a preview: 10 rows of 10; every image goes to the folder / .npz


class Outputs:
    """The destinations of one sampling job; `add` each chunk in order, then `finish` (also after an interrupt)."""

    def __init__(self, run, *, labels: torch.Tensor | None, n: int, nrow: int | None, grid: Path | None,
                 npz: Path | None = None, folder: Path | None = None, info: dict | None = None,
                 prompts: list[str] | None = None) -> None:
        import numpy as np

        self.labels, self.prompts, self.n, self.done = labels, prompts, n, 0
        self.grid_path, self.npz_path, self.folder_path = Path(grid) if grid else None, npz, folder
        self.keep, self.nrow, self.what = grid_indices(labels, n, nrow)
        self.keep = self.keep if grid else []  # no grid asked for: no preview images kept
        self.grid_parts: list[torch.Tensor] = []
        self.shown, self.npz_written, self.finished = 0, False, False  # what `finish` wrote: grid images, .npz
        self.pixels = None
        if npz:
            c, _, size = run.spec.image_shape
            self.pixels = np.empty((n, size, size, c), dtype=np.uint8)  # (N, H, W, C)
        self.folder = None
        if folder:
            from difflab.interop.imagefolder import ImageFolderWriter

            self.folder = ImageFolderWriter(folder, run.class_names, info=info or {})

    def add(self, _cond, images: torch.Tensor) -> None:
        """One chunk `(b, C, H, W)`, in order (its class ids / prompts are sliced from ours, not from `_cond`)."""
        from difflab.report.images import to_uint8

        start, b = self.done, len(images)
        chunk_labels = self.labels[start : start + b] if self.labels is not None else None
        texts = self.prompts[start : start + b] if self.prompts is not None else None
        picked = [i - start for i in self.keep if start <= i < start + b]
        if picked:
            self.grid_parts.append(images[picked])
        if self.pixels is not None:
            self.pixels[start : start + b] = to_uint8(images)
        if self.folder is not None:
            self.folder.write(images, chunk_labels, texts)
        self.done += b

    def kept(self) -> str:
        """What survives an interrupt or a write error, in words."""
        if self.folder is None:
            return f"{self.done:,} of {self.n:,} images were generated"
        return f"{self.folder_path} holds {self.folder.written:,} of {self.n:,} images (listed in its metadata.jsonl)"

    def stop(self) -> str:
        """Stopped by a signal: `finish` what was generated, and say what was kept (after "stopped by SIGTERM")."""
        self.finish(interrupted=True)
        if self.done == 0:
            return f"before the first of {self.n:,} images was done; nothing written; to get them, sample again"
        kept = [self.kept()] if self.folder is not None else []
        if self.shown:  # 0: a second signal stopped the writes
            kept.append(f"a grid of {self.shown} of them in {self.grid_path}")
        if self.pixels is not None and self.npz_written:
            kept.append(f"{self.done:,} in {self.npz_path}")
        again = " into a new --out-dir" if self.folder is not None else ""
        return (f"after {self.done:,} of {self.n:,} images; kept: {', '.join(kept)}; for all {self.n:,}, "
                f"sample again{again}")

    def finish(self, *, interrupted: bool = False, log=print) -> None:
        """Write the grid and .npz of what was generated (all of it, or what came before an interrupt, then
        silently: the stop's one line says what was kept). Atomic, so a second signal leaves no half file."""
        if self.finished:  # a signal just after the end: `stop` finishes again
            return
        self.finished = True
        if self.folder is not None:
            self.folder.close()
            if interrupted and self.folder.written == 0:
                _remove_empty(self.folder_path)  # else a rerun into it is refused as "already holds images"
        if interrupted:
            log = _silent
        if self.done == 0:
            return
        self._write_grid(log)
        if self.pixels is not None:
            self._write_npz()
            log(f"wrote {self.done} images and labels to {self.npz_path}")
        if self.folder is not None:
            log(f"wrote {self.folder.written} images to {self.folder_path}/<class>/ with metadata.jsonl")

    def _write_grid(self, log) -> None:
        from difflab.report.images import save_grid

        if self.grid_path is None:
            return
        shown = torch.cat(self.grid_parts)
        save_grid(shown, self.grid_path, nrow=self.nrow)  # atomic, folders made: a stop leaves the old file or none
        self.shown = len(shown)
        if len(shown) == self.done == self.n:
            log(f"wrote {self.n} images to {self.grid_path}")
        else:
            log(f"wrote a grid of {len(shown)} of the {self.done} images ({self.what}) to {self.grid_path}")

    def _write_npz(self) -> None:
        import numpy as np

        done = self.done
        labels = self.labels[:done].numpy() if self.labels is not None else np.full(done, -1)  # -1: unconditional
        extra = {"prompts": np.array(self.prompts[:done])} if self.prompts is not None else {}
        Path(self.npz_path).parent.mkdir(parents=True, exist_ok=True)  # --save-npz a/b.npz: checked writable, made now
        files.atomic_save(self.npz_path, lambda out: np.savez_compressed(out, images=self.pixels[:done], labels=labels,
                                                                         **extra))
        self.npz_written = True


def _silent(_text: str) -> None:
    pass


def _remove_empty(folder: Path) -> None:
    """An --out-dir that got no image: its empty metadata.jsonl and the folder go, so it can be given again."""
    from difflab.interop.imagefolder import METADATA

    (folder / METADATA).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty (the user's own files): left as it is
        folder.rmdir()


def consume(chunks, sink: Outputs, *, show: bool, hold=contextlib.nullcontext) -> None:
    """Hand each chunk to the outputs as it is produced; a progress bar (stderr) when there are several.
    `hold` (`signals.Stopping.hold`): a signal waits until the chunk is written and counted, never half of it."""
    from difflab import progress

    with progress.bar(sink.n, "sampling", unit="img", enabled=show) as bar:
        for chunk_labels, images in chunks:
            with hold():
                sink.add(chunk_labels, images)
                bar.update(len(images))


def grid_indices(labels: torch.Tensor | None, n: int, nrow: int | None) -> tuple[list[int], int, str]:
    """Which images the PNG grid shows, its width, and how they were picked (printed).

    All of them up to `GRID_MAX`; beyond, the first images of each class (rows of one class when
    possible), or the first `GRID_MAX` unconditional ones."""
    if n <= GRID_MAX:
        return list(range(n)), nrow or max(1, round(n**0.5)), "all"
    if labels is None:
        return list(range(GRID_MAX)), 10, f"the first {GRID_MAX}"
    classes = labels.unique().tolist()
    per_class = max(1, GRID_MAX // len(classes))
    per_class = per_class if per_class <= 10 else per_class - per_class % 10  # whole rows of 10
    keep = []
    for c in classes[:GRID_MAX]:
        keep += (labels == c).nonzero().flatten()[:per_class].tolist()
    return sorted(keep), min(per_class, 10), f"the first {per_class} of each class"


def sample_prompts(prompts: list[str], label, n: int | None, run) -> list[str]:
    """`n` prompts cycling through those given, grouped so the grid shows each prompt together."""
    if label:
        raise UserError("give --label or --prompt, not both")
    if not getattr(run, "is_text", False):
        raise UserError("this model is not text-conditional; fix: --label instead of --prompt, or train with "
                        "--conditioning text")
    if n is not None and n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    n = n or 16
    return sorted((prompts[i % len(prompts)] for i in range(n)), key=prompts.index)


def sample_labels(label: tuple[int, ...] | None, n: int | None, num_classes: int) -> tuple[torch.Tensor | None, int | None]:
    """Labels to sample and the grid width (one row per class when every class is drawn)."""
    if n is not None and n < 1:
        raise UserError(f"--n must be at least 1, got {n}")
    if not num_classes:
        if label:
            raise UserError("this run is unconditional; fix: drop --label")
        return None, None
    if label:
        n = n or 16
        return torch.tensor(label).repeat(-(-n // len(label)))[:n].sort().values, None
    n = n or 100
    per_class = -(-n // num_classes)
    labels = torch.arange(num_classes).repeat_interleave(per_class)[:n]
    return labels, per_class if n % num_classes == 0 else None


__all__ = ["GRID_MAX", "Outputs", "consume", "grid_indices", "sample_labels", "sample_prompts"]
