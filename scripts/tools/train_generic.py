"""Train the generic models that `stdo train` starts from (`--init auto`): one per scale for the default
preset, on public-domain and CC0 photos and textures that scikit-image's wheel ships (nothing is downloaded).

    .venv/bin/python scripts/tools/train_generic.py [--scales 2 3 4] [--steps 6000] [--out vs_stdo/generic]

Each image is read and downscaled exactly as `stdo train` reads a clip (video.hr_lr_pair, the bicubic
kernel), then cut into overlapping LR tiles of one training patch (and their mirror images), which become
the frames of an ordinary single-model run. The result is an ordinary bundle, `<preset>-x<scale>.stdo`.
"""
from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from vs_stdo.core.clip_record import ClipRecord
from vs_stdo.core.fingerprint import fingerprint
from vs_stdo.core.video import frame_array, hr_lr_pair, open_clip
from vs_stdo.train import generic
from vs_stdo.train.data import Frames
from vs_stdo.train.run import train
from vs_stdo.train.settings import Settings

# scikit-image's own notes on each file (skimage/data/_fetchers.py). Its CC0 textures (brick, grass, gravel) are
# left out: with them, 600 steps from the generic model ended 0.20 dB lower on bigbuckbunny (docs/results.md).
IMAGES = {
    "astronaut.png": "public domain (NASA)",
    "chelsea.png": "CC0 (Stefan van der Walt)",
    "coffee.png": "CC0 (Rachel Michetti)",
    "rocket.jpg": "public domain (SpaceX)",
    "hubble_deep_field.jpg": "public domain (NASA)",
    "camera.png": "CC0 (Lav Varshney)",
}
TILES_PER_IMAGE = 48  # at most, evenly picked, so that big images do not drown the rest


def starts(size: int, tile: int) -> list[int]:
    """Tile origins along one side: every half tile, and one flush with the far edge."""
    return sorted(set(range(0, size - tile + 1, tile // 2)) | {size - tile})


def tiles(scale: int, patch: tuple[int, int]) -> Frames:
    """Every image's LR/HR tiles of one patch, and their mirror images, as the frames of one clip."""
    pw, ph = patch
    lrs, hrs = [], []
    for name in IMAGES:
        hr_clip, lr_clip = hr_lr_pair(open_clip(resources.files("skimage") / "data" / name), scale)
        lr, hr = frame_array(lr_clip.get_frame(0)), frame_array(hr_clip.get_frame(0))
        origins = [(x, y) for y in starts(lr.shape[1], ph) for x in starts(lr.shape[2], pw)]
        for x, y in origins[::max(1, len(origins) // TILES_PER_IMAGE)][:TILES_PER_IMAGE]:
            lo = lr[:, y:y + ph, x:x + pw]
            hi = hr[:, y * scale:(y + ph) * scale, x * scale:(x + pw) * scale]
            lrs += [lo, lo[:, :, ::-1]]
            hrs += [hi, hi[:, :, ::-1]]
    lr_t = torch.from_numpy(np.stack(lrs).copy())
    hr_t = torch.from_numpy(np.stack(hrs)).mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8)
    return Frames(lr_t, hr_t, np.stack([fingerprint(f) for f in lr_t]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scales", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--preset", default=generic.PRESET)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--out", default=str(generic.FOLDER))
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for scale in a.scales:
        s = Settings(scale=scale, mode="single", preset=a.preset, steps=a.steps, init="none")
        frames = tiles(scale, (s.patch_width, s.patch_height))
        print(f"x{scale}: {len(frames)} tiles of {len(IMAGES)} images")
        clip = ClipRecord(s.patch_width, s.patch_height, len(frames),
                          source="scikit-image sample images: " + "; ".join(f"{k} {v}" for k, v in IMAGES.items()),
                          lr="bicubic downscale", kernel="bicubic")
        train(frames, s, out / generic.file_name(a.preset, scale), clip)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
