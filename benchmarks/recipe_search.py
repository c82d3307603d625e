"""Compare training recipes at an equal image budget: judge accuracy of class-conditional samples.

Quality per image seen does not depend on the hardware, so this runs anywhere (a GPU makes it fast);
CPU cost per image comes from `benchmarks/spine.py`. Usage:

    python benchmarks/recipe_search.py '[{"objective": "v"}, {"objective": "eps"}]' --images 120000
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time

import torch

from difflab.evaluation import judge_samples, load_judge
from difflab.run import Run
from difflab.sampling import class_labels
from difflab.training.config import TrainConfig
from difflab.training.trainer import Trainer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("configs", help="JSON list of TrainConfig overrides")
    parser.add_argument("--images", type=int, default=120_000, help="training images per recipe")
    parser.add_argument("--samplers", default='[["dpm++", 10, 3.0], ["dpm++", 20, 3.0]]')
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    judge = load_judge("mnist5k")
    print(f"judge accuracy on real held-out digits: {judge.accuracy:.3f}", flush=True)
    for overrides in json.loads(args.configs):
        base = TrainConfig(steps=1, minutes=None, device=args.device, num_sample_grids=0, checkpoint_minutes=1e6)
        batch = overrides.get("batch_size", base.batch_size)
        config = base.replace(steps=args.images // batch, **overrides)
        out = tempfile.mkdtemp()
        started = time.time()
        Trainer(config, out, show_progress=False).run()
        seconds = time.time() - started
        run = Run.load(out, device="cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
        labels = class_labels(10, 100)
        scores = {}
        for solver, steps, guidance in json.loads(args.samplers):
            images = run.sample(labels, solver=solver, steps=steps, guidance=guidance)
            scores[f"{solver}/{steps}/w{guidance:g}"] = round(judge_samples(judge, images, labels)["accuracy"], 3)
        print(json.dumps({"recipe": overrides, "steps": config.steps, "train_s": round(seconds, 1), **scores}), flush=True)
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
