"""`stdo info`: what a bundle holds, for people (or its manifest as JSON)."""
from __future__ import annotations

import json
from pathlib import Path

from ..core import bundle as bundle_io
from ..train.chunks import auto_summary, floor_note


def describe(path: str | Path, as_json: bool = False) -> str:
    """The bundle at `path` in a few lines (or its manifest as JSON); raises BundleError / OSError on a bad file."""
    lines: list[str] = []
    say = lines.append
    data = bundle_io.read_file(path)
    b = bundle_io.from_bytes(data)
    stored = bundle_io.read_manifest(data)
    m = b.manifest() | {k: stored.get(k) for k in ("version", "storage")}  # the file's, not this code's
    if as_json:
        return json.dumps(m, indent=2)
    c = m["clip"]
    say(f"{path}: STDO bundle v{m['version']}, {len(data)} bytes, weights {b.weight_storage}")
    say("  bytes: " + ", ".join(f"{part} {n}" for part, n in bundle_io.part_bytes(data).items()))
    say(f"  scale x{m['scale']}, LR {c['width']}x{c['height']}, {c['frames']} frames from {c.get('source')}")
    say(f"  patches {m['patch']['width']}x{m['patch']['height']}, grid {m['grid']['cols']}x{m['grid']['rows']}")
    say(f"  geometry: {b.mapping.describe()}" + (" (whole scale: the output is the models' own)"
                                                  if b.mapping.whole() else ", the models' output resampled onto it"))
    alignment = c.get("alignment")
    report = alignment.get("lines") if isinstance(alignment, dict) else None
    if isinstance(report, list) and all(isinstance(v, str) for v in report):  # the manifest is data
        say("  alignment at training: " + "; ".join(report))
    say(f"  colour of untagged YUV clips: {b.colour.describe()} (as trained)" if b.colour else
        "  colour of untagged YUV clips: by frame size (BT709 above 1024x576, else BT601); the bundle predates "
        "recorded colour")
    say(f"  {m['chunks']} chunk model(s) on {'luma (Y)' if b.planes == 1 else 'RGB'}: " + ", ".join(
        f"wdsr {a_['blocks']}x{a_['channels']}x{a_['expansion']}" for a_ in m["models"]))
    if m["thresholds"]:
        say("  chunk PSNR thresholds (dB): " + ", ".join(f"{t:.2f}" for t in m["thresholds"]))
    t = m["training"]
    stages = t.get("stages") if t else None
    chunks = stages.get("chunks") if isinstance(stages, dict) else None
    sizes = chunks.get("patches") if isinstance(chunks, dict) else None
    if isinstance(sizes, list) and sizes and all(isinstance(n, int) and n > 0 for n in sizes):  # the manifest is data
        floor = t.get("floor")
        say("  chunks at the split (training patches, hardest first): " + ", ".join(
            f"{n} ({n / sum(sizes):.1%})" for n in sizes)
            + (floor_note(floor) if isinstance(floor, (int, float)) else ""))
    if t:
        say(f"  trained: mode {t.get('mode')}, preset {t.get('preset')}, {t.get('total_steps')} steps, "
            f"{t.get('seconds')} s, scorer {t.get('scorer')}"
            + (f", labels {t.get('labels', 'split')}" if m["chunks"] > 1 else "")
            + f", started from {t.get('started_from', 'none')}")
        say(f"  held-out frames (not trained on): {', '.join(map(str, t.get('heldout', []))) or 'none'}")
        scenes = t.get("heldout_scenes")
        if isinstance(scenes, dict) and all(isinstance(scenes.get(k), (int, float)) for k in ("gain_db", "frames")):
            say(f"  held-out scenes (never trained on, {scenes['frames']} frames): {scenes['gain_db']:+.2f} dB over "
                f"bicubic through the mapping" + ("  WARNING: worse than bicubic on content it never saw"
                                                  if scenes["gain_db"] < 0 else ""))
        auto = t.get("auto")
        if (isinstance(auto, dict) and isinstance(auto.get("kept"), list) and isinstance(auto.get("psnr"), list)
                and auto["psnr"] and all(isinstance(v, (int, float)) for v in auto["psnr"])):  # the manifest is data
            say(f"  {auto_summary(auto)}")
    r = m["router"]
    if r:
        fit = {k: r["fit"][k] for k in ("accuracy_vs_labels", "accuracy_vs_best", "psnr") if k in r["fit"]}
        say(f"  blind router: MLP on {', '.join(r['features'])} ({r['hidden']} hidden); on the training "
            f"patches: {json.dumps(fit)}")
    elif m["chunks"] > 1:
        say("  blind router: none (route='blind' needs one; 'auto' sends frames it cannot find to chunk 0)")
    return "\n".join(lines)
