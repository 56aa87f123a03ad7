"""`stdo info`: what a bundle holds, for people (or its manifest as JSON)."""
from __future__ import annotations

import json
from pathlib import Path

from ..core import bundle as bundle_io
from ..core import schema
from ..train.chunks import auto_summary, floor_note


def describe(path: str | Path, as_json: bool = False) -> str:
    """The bundle at `path` in a few lines (or its manifest as JSON); raises BundleError / OSError on a bad file."""
    lines: list[str] = []
    say = lines.append
    data = bundle_io.read_file(path)
    b = bundle_io.from_bytes(data)
    if as_json:
        return json.dumps(schema.builtins(b.manifest()), indent=2)  # as read: defaults filled in
    c, t = b.clip, b.training
    say(f"{path}: STDO bundle v{bundle_io.VERSION}, {len(data)} bytes, weights {b.weight_storage}")
    say("  bytes: " + ", ".join(f"{part} {n}" for part, n in bundle_io.part_bytes(data).items()))
    say(f"  scale x{b.scale}, LR {c.width}x{c.height}, {c.frames} frames from {c.source}")
    say(f"  patches {b.patch_width}x{b.patch_height}, grid {b.grid.cols}x{b.grid.rows}")
    say(f"  geometry: {b.mapping.describe()}" + (" (whole scale: the output is the models' own)"
                                                  if b.mapping.whole() else ", the models' output resampled onto it"))
    if c.alignment is not None:
        say("  alignment at training: " + "; ".join(c.alignment.lines))
    say(f"  colour of untagged YUV clips: {b.colour.describe()} (as trained)" if b.colour else
        "  colour of untagged YUV clips: by frame size (BT709 above 1024x576, else BT601); the bundle predates "
        "recorded colour")
    say(f"  {b.chunks} chunk model(s) on {'luma (Y)' if b.planes == 1 else 'RGB'}: " + ", ".join(
        f"wdsr {a.blocks}x{a.channels}x{a.expansion}" for a in b.archs))
    if b.thresholds:
        say("  chunk PSNR thresholds (dB): " + ", ".join(f"{v:.2f}" for v in b.thresholds))
    chunks = t.stages.get("chunks")
    if chunks and chunks.patches and all(chunks.patches):
        sizes = chunks.patches
        say("  chunks at the split (training patches, hardest first): " + ", ".join(
            f"{n} ({n / sum(sizes):.1%})" for n in sizes) + floor_note(t.floor))
    if t.total_steps is not None:  # a bundle `stdo train` wrote (not one built by hand)
        say(f"  trained: mode {t.mode}, preset {t.preset}, {t.total_steps} steps, {t.seconds} s, scorer {t.scorer}"
            + (f", labels {t.labels}" if b.chunks > 1 else "") + f", started from {t.started_from}")
        say(f"  held-out frames (not trained on): {', '.join(map(str, t.heldout)) or 'none'}")
    if t.heldout_scenes:
        h = t.heldout_scenes
        say(f"  held-out scenes (never trained on, {h.frames} frames): {h.kept}, {h.gain_db:+.2f} dB over bicubic "
            f"through the mapping" + ("  WARNING: worse than bicubic on content it never saw" if h.gain_db < 0 else ""))
    if t.auto and t.auto.psnr:
        say(f"  {auto_summary(t.auto)}")
    if b.router:
        r = b.router
        fit = {k: getattr(r.info, k) for k in ("accuracy_vs_labels", "accuracy_vs_best", "psnr")
               if getattr(r.info, k) is not None}
        say(f"  blind router: MLP on {', '.join(r.names)} ({len(r.tensors['hidden.bias'])} hidden); on the training "
            f"patches: {json.dumps(fit)}")
    elif b.chunks > 1:
        say("  blind router: none (route='blind' needs one; 'auto' sends frames it cannot find to chunk 0)")
    return "\n".join(lines)
