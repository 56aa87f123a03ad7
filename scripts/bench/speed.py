"""Speed of `core.stdo.Upscale` against vs-mlrt (`core.ort.Model`, ONNX Runtime CPU, and `core.ov.Model`,
OpenVINO CPU) running the same weights, and against `core.resize.Bicubic`, on real frames (docs/speed.md).

    .venv/bin/python -m scripts.bench.speed [--presets tiny,small,paper] [--scales 4,2] [--runs 3]
        [--frames 4] [--workdir out/bench_speed] [--levers] [--markdown out.md]
    .venv/bin/python -m scripts.bench.speed --parts peers [--clips phone1080.mp4,bigbuckbunny.mp4,cockatoo.mp4]
        [--peer-steps 2000] [--scales 4,2] [--runs 3] [--frames 8]

Clip: the first frames of phone1080.mp4 (1920x1080 real footage), LR = bicubic downscale: 480x270
for x4, 960x540 for x2, held in memory so decoding is not timed. For every preset and scale a k=4
bundle is trained on those frames (`stdo train --steps 4 --pretrain 0`: real routing labels from the
bicubic scorer; speed does not depend on how long the weights trained) unless `--bundle
PRESETxSCALE=PATH` gives one, and chunk 0's model is exported to ONNX for vs-mlrt.

Every measurement runs in its own process (so peak RSS is its own): one warm-up frame, then
`--frames` frames through `clip.frames()` with VapourSynth's default thread count. Runs are
interleaved (run 1 of every method, then run 2, ...) and medians reported, so load from other
processes hits all methods alike. Effective GFLOP/s counts the work of one model on the whole frame
(what ORT computes), whatever the method really computes, against a GEMM peak measured in the same
run. `--levers` adds model-level timings of the inference backends on one 480x270 frame.

`--parts peers` is what a user sees: for each clip (its first 30 frames at 1920x1080: a 720p clip is
upscaled to 1080p with Catmull-Rom first) and scale, a bundle trained the way a user trains one (`stdo
train CLIP --scale S`, only `--steps` changed by `--peer-steps`; kept in the workdir by clip and settings,
so reruns reuse it), played on its own LR frames (480x270 for x4, 960x540 for x2): the routed filter,
one model of the bundle (`route="chunk:0"`), and vs-mlrt's ONNX Runtime and OpenVINO backends (1 and 2
streams; OpenVINO at its default precision, which is bf16 on a CPU with AMX, and at float32) on that
model.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scripts.bench.lib import interleaved, medians, seconds, table, train_bundle

BASE_FRAMES = "0:6"
PEER_FRAMES = 30          # the first frames of each clip that a peers bundle is trained on
HD = (1920, 1080)
# vs-mlrt's CPU backends: method -> (plugin, streams, OpenVINO config: None = its default precision)
PEERS = {"ort": ("ort", 1, None), "ort2": ("ort", 2, None), "ov": ("ov", 1, None), "ov2": ("ov", 2, None),
         "ov_f32": ("ov", 1, "f32"), "ov2_f32": ("ov", 2, "f32")}


def lr_frames(scale: int, count: int, source: str | None = None, frames: str = BASE_FRAMES):
    """An RGBS LR clip of real frames (`frames` of phone1080.mp4, or of the `source` file or script) served from
    memory (no decoding while timed)."""
    from scripts import clips
    from scripts.bench.lib import from_memory
    from vs_stdo.core.video import hr_lr_pair, open_clip, select_frames

    hr = open_clip(source or clips.fetch("phone1080.mp4"))
    _, lr = hr_lr_pair(select_frames(hr, frames), scale)
    return from_memory(lr, count)


def vs_peer(core, lr, method: str, onnx: str):
    """vs-mlrt's `method` (a PEERS key) on the clip `lr` with the network `onnx`."""
    plugin, streams, precision = PEERS[method]
    if plugin == "ort":
        return core.ort.Model(lr, onnx, num_streams=streams)
    config = {"config": lambda: {"INFERENCE_PRECISION_HINT": precision}} if precision else {}
    return core.ov.Model(lr, onnx, num_streams=streams, **config)


def worker(spec: dict) -> dict:
    """One measurement: fps of one method on one clip; peak RSS of this process."""
    import torch
    import vapoursynth as vs

    if spec.get("torch_threads"):
        torch.set_num_threads(spec["torch_threads"])
    core = vs.core
    if spec.get("vs_threads"):
        core.num_threads = spec["vs_threads"]
    lr = lr_frames(spec["scale"], spec["frames"] + 1, spec.get("source"), spec.get("select", BASE_FRAMES))
    method = spec["method"]
    if method == "stdo":
        out = core.stdo.Upscale(lr, spec["bundle"], **spec.get("args", {}))
    elif method in PEERS:
        out = vs_peer(core, lr, method, spec["onnx"])
    else:
        out = core.resize.Bicubic(lr, lr.width * spec["scale"], lr.height * spec["scale"])
    out.get_frame(0)
    cpu = _cpu_seconds()

    def render() -> None:
        for _ in out[1:].frames(close=True):
            pass
    wall = seconds(render)
    return {"fps": spec["frames"] / wall, "cpu_s": (_cpu_seconds() - cpu) / spec["frames"],
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_worker(spec: dict) -> dict:
    """One measurement in its own process: this tree's Python, or that of the tree `spec["tree"]` (an earlier
    version of vs-stdo with its own .venv, whose bench takes the same spec)."""
    tree = spec.get("tree")
    python = str(Path(tree, ".venv", "bin", "python")) if tree else sys.executable
    proc = subprocess.run([python, "-m", "scripts.bench.speed", "--worker",
                           json.dumps({k: v for k, v in spec.items() if k != "tree"})],
                          capture_output=True, text=True, cwd=tree)
    if proc.returncode:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def gemm_peak(dtype_name: str, runs: int = 5) -> float:
    """GFLOP/s of a 2048x2048 matrix product, median of `runs`."""
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.rand(2048, 2048).to(dtype), torch.rand(2048, 2048).to(dtype)
    times = interleaved({"gemm": lambda: seconds(lambda: a @ b)}, runs, warmup=1)["gemm"]
    return 2 * 2048 ** 3 / statistics.median(times) / 1e9


def prepare(preset: str, scale: int, workdir: Path, given: dict[str, str]) -> tuple[str, str]:
    """(bundle, chunk-0 ONNX file) for a preset and scale, trained/exported into workdir if missing."""
    from scripts import clips
    from vs_stdo.tools.onnx_export import export

    key = f"{preset}x{scale}"
    bundle = Path(given.get(key) or workdir / f"{key}.stdo")
    train_bundle(clips.fetch("phone1080.mp4"), bundle, "--frames", BASE_FRAMES, "--scale", scale, "--chunks", 4,
                 "--preset", preset, "--steps", 4, "--pretrain", 0, "--device", "cpu", reuse=True)
    onnx_dir = workdir / f"{bundle.stem}-onnx"
    if not (onnx_dir / "chunk0.onnx").is_file():
        export(bundle, onnx_dir)
    return str(bundle), str(onnx_dir / "chunk0.onnx")


def peer_bundle(clip: str, scale: int, steps: int, workdir: Path, hr: str = "1080") -> tuple[str, str, str]:
    """(HR script, bundle, chunk-0 ONNX file) of a clip trained as a user would (`stdo train HR --scale S`,
    only --steps given), each made once and kept in workdir under the clip and the settings. hr: "1080" (the
    clip brought to 1920x1080) or "native" (the clip at its own size)."""
    from scripts import clips
    from vs_stdo.tools.onnx_export import export

    folder = workdir / "peers"
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(clip).stem
    script = folder / f"{stem}-{hr}.vpy"
    resize = TO_HD.format(w=HD[0], h=HD[1]) if hr == "1080" else ""
    script.write_text(PEER_SCRIPT.format(path=str(clips.fetch(clip)), frames=PEER_FRAMES, resize=resize))
    bundle = folder / f"{stem}-{hr}-x{scale}-steps{steps}.stdo"
    train_bundle(script, bundle, "--scale", scale, "--steps", steps, "--device", "cpu", reuse=True)
    onnx_dir = folder / f"{bundle.stem}-onnx"
    if not (onnx_dir / "chunk0.onnx").is_file():
        export(bundle, onnx_dir)
    return str(script), str(bundle), str(onnx_dir / "chunk0.onnx")


TO_HD = """if (clip.width, clip.height) != ({w}, {h}):  # up to 1080p with Catmull-Rom, in the clip's own format
    clip = clip.resize.Bicubic({w}, {h}, filter_param_a=0, filter_param_b=0.5)
"""
PEER_SCRIPT = """import vapoursynth as vs
clip = vs.core.bs.VideoSource({path!r})[0:{frames}]
{resize}clip.set_output()
"""


def regions_per_frame(bundle_path: str, source: str) -> str:
    """'patches / regions' of the timed frames' labels (regions as the CPU engine plans them)."""
    import torch

    from vs_stdo.core import bundle as bundle_io
    from vs_stdo.filter.regions import cover

    b = bundle_io.load(bundle_path)
    frames = range(*map(int, BASE_FRAMES.split(":")))
    counts = [len(cover(b.grid, torch.from_numpy(b.labels[n].reshape(-1).astype("int64")))) for n in frames]
    return f"{b.grid.count} / {statistics.fmean(counts):.0f}"


def levers(presets: list[str], runs: int) -> list[dict]:
    """Model-level seconds per 480x270 frame (x4) of each inference backend, interleaved, medians."""
    import io

    import onnxruntime as ort
    import torch
    import torch.nn.functional as F

    from vs_stdo.core.models import WDSR
    from vs_stdo.core.models import preset as make
    from vs_stdo.filter.runner import Runner, bf16_runs

    rows = []
    for name in presets:
        torch.manual_seed(0)
        model = WDSR(make(name, 4)).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn_like(p) * 0.02)
        r = model.arch.radius
        x = torch.rand(1, 3, 270, 480)
        xr = F.pad(x, (r,) * 4, mode="replicate")
        cl = WDSR(model.arch).eval()
        cl.load_state_dict(model.state_dict())
        cl = cl.to(memory_format=torch.channels_last)
        with torch.no_grad():
            frozen = torch.jit.freeze(torch.jit.trace(model, x))
        buf = io.BytesIO()
        torch.onnx.export(model, (x,), buf, input_names=["input"], output_names=["output"], opset_version=17,
                          dynamic_axes={"input": {2: "h", 3: "w"}}, dynamo=False)
        session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
        fp32 = Runner(model, torch.device("cpu"))
        backends = {
            "torch eager fp32": lambda: model(x),
            "channels_last fp32": lambda: cl(x.contiguous(memory_format=torch.channels_last)),
            "TorchScript frozen fp32": lambda: frozen(x),
            "ONNX Runtime fp32 (in process)": lambda: session.run(None, {"input": x.numpy()}),
            "Runner fp32 (oneDNN fused, valid convs)": lambda: fp32(xr),
        }
        if bf16_runs():  # an AVX2-only CPU runs no bf16 convolution at all
            bf16, compiled = Runner(model, torch.device("cpu"), torch.bfloat16), _compiled(cl, x)
            backends |= {
                "autocast bf16, channels_last": lambda: _autocast(cl, x),
                "torch.compile (inductor, frozen) autocast bf16": lambda: _autocast(compiled, x),
                "Runner bf16 residual (default where bf16 is native)": lambda: bf16(xr),
            }
        with torch.inference_mode():
            times = medians(interleaved({k: lambda f=f: seconds(f) for k, f in backends.items()}, runs, warmup=1))
        ort_s = times["ONNX Runtime fp32 (in process)"]
        for k, v in times.items():
            rows.append({"preset": name, "backend": k, "seconds": v, "vs_ort": ort_s / v})
            print(f"lever {name:6s} {k:40s} {v:7.3f} s  x{ort_s / v:.2f}", flush=True)
    return rows


class Timed:
    """A runner that adds up the CPU seconds spent inside it."""

    def __init__(self, runner) -> None:
        self.runner, self.radius, self.macs, self.seconds = runner, runner.radius, runner.macs, 0.0

    def __call__(self, x):
        start = time.thread_time()
        out = self.runner(x)
        self.seconds += time.thread_time() - start
        return out


def routing_overhead(bundle_path: str, runs: int) -> dict:
    """In process, on one thread, in CPU seconds (robust to other processes' load): one real frame routed
    by its labels vs one model on the whole frame (chunk 0), the share of time outside the model calls
    (cutting, routing, stitching), and the multiply-accumulates each computes."""
    import torch

    from vs_stdo.core import bundle as bundle_io
    from vs_stdo.core.video import frame_array
    from vs_stdo.filter.engine import Engine
    from vs_stdo.filter.regions import cover, owned_box

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    b = bundle_io.load(bundle_path)
    lr = lr_frames(b.scale, 1)
    e = Engine(b, lr.width, lr.height, device="cpu")
    frame = torch.from_numpy(frame_array(lr.get_frame(0)))
    out = list(torch.empty(3, lr.height * b.scale, lr.width * b.scale))   # reused, like VapourSynth's frame pool
    cases = {"routed": None, "one model": None}
    timed = [Timed(r) for r in e.runners]
    e.runners = timed
    def frame_seconds(case: str) -> tuple[float, float]:
        """CPU seconds of one frame, and of the model calls in it."""
        for t in timed:
            t.seconds = 0.0

        def upscale() -> None:
            labels = e.routing(0, frame)
            cases[case] = labels if case == "routed" else torch.zeros_like(labels)
            e.upscale_into(frame, cases[case], out)
        return seconds(upscale, time.thread_time), sum(t.seconds for t in timed)

    samples = interleaved({k: lambda k=k: frame_seconds(k) for k in cases}, runs, warmup=1)
    torch.set_num_threads(threads)
    macs = {k: sum(timed[g.chunk].macs(y1 - y0, x1 - x0)
                   for g in cover(e.grid, lab) for y0, x0, y1, x1 in [owned_box(e.grid, g)])
            for k, lab in cases.items()}
    med = medians({k: [whole for whole, _ in v] for k, v in samples.items()})
    inside = medians({k: [models for _, models in v] for k, v in samples.items()})
    return {"routed_s": med["routed"], "one_s": med["one model"], "overhead": med["routed"] / med["one model"] - 1,
            "mac_overhead": macs["routed"] / macs["one model"] - 1,
            "outside_routed": med["routed"] - inside["routed"], "outside_one": med["one model"] - inside["one model"],
            "regions": len(cover(e.grid, cases["routed"])), "patches": e.grid.count}


def engine_paths(bundle_path: str, runs: int) -> dict[str, float]:
    """In process, one thread, CPU seconds per routed real frame of each engine path (`Engine(path=...)`):
    "batches" (every patch cut with its full context, batched per chunk: the CUDA path) against "regions"
    (merged regions with exactly each model's radius: the CPU path), in float32 and bf16."""
    import torch

    from vs_stdo.core import bundle as bundle_io
    from vs_stdo.core.video import frame_array
    from vs_stdo.filter.engine import PATHS, Engine
    from vs_stdo.filter.runner import bf16_runs

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    b = bundle_io.load(bundle_path)
    lr = lr_frames(b.scale, 1)
    frame = torch.from_numpy(frame_array(lr.get_frame(0)))
    out = list(torch.empty(3, lr.height * b.scale, lr.width * b.scale))
    engines = {f"{path}, {'bf16' if bf16 else 'fp32'}": Engine(b, lr.width, lr.height, device="cpu", bf16=bf16,
                                                               path=path)
               for bf16 in ((False, True) if bf16_runs() else (False,)) for path in PATHS}
    labels = next(iter(engines.values())).routing(0, frame)
    samples = interleaved({k: lambda e=e: seconds(lambda: e.upscale_into(frame, labels, out), time.thread_time)
                           for k, e in engines.items()}, runs, warmup=1)
    torch.set_num_threads(threads)
    return medians(samples)


def trained_frames(path: str, frames: str):
    """(bundle, HR, LR) for a bundle trained on `frames` of phone1080.mp4."""
    from scripts import clips
    from vs_stdo.core import bundle as bundle_io
    from vs_stdo.core.video import hr_lr_pair, open_clip, select_frames

    b = bundle_io.load(path)
    return (b, *hr_lr_pair(select_frames(open_clip(clips.fetch("phone1080.mp4")), frames), b.scale))


def bundle_psnr(path: str, frames: str, bf16: bool | None = None) -> tuple[float, float]:
    """(mean PSNR RGB against the HR, mean CPU seconds per frame on one thread) of the engine, routed by labels."""
    import torch

    from vs_stdo.core.metrics import psnr
    from vs_stdo.core.video import frame_array
    from vs_stdo.filter.engine import Engine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    b, hr, lr = trained_frames(path, frames)
    e = Engine(b, lr.width, lr.height, device="cpu", bf16=bf16)
    scores, times = [], []
    for n in range(lr.num_frames):
        x = torch.from_numpy(frame_array(lr.get_frame(n)))
        start = time.thread_time()
        out = e.upscale(x, e.routing(n, x))
        times.append(time.thread_time() - start)
        scores.append(psnr(out, torch.from_numpy(frame_array(hr.get_frame(n))).clamp(0, 1)))
    torch.set_num_threads(threads)
    return statistics.fmean(scores), statistics.median(times)


def accuracy(bundles: list[str], frames: str) -> list[dict]:
    """PSNR of float32 and bf16 engine output, per bundle trained on `frames` of phone1080.mp4."""
    from vs_stdo.core import bundle as bundle_io

    rows = []
    for path in bundles:
        archs = bundle_io.load(path).archs
        row = {"bundle": Path(path).name, "models": ", ".join(f"{a.blocks}x{a.channels}x{a.expansion}" for a in archs),
               "fp32": bundle_psnr(path, frames, False)[0], "bf16": bundle_psnr(path, frames, True)[0]}
        row["delta"] = row["bf16"] - row["fp32"]
        rows.append(row)
        print(f"accuracy {row}", flush=True)
    return rows


def adaptive(pairs: list[str], frames: str) -> list[dict]:
    """UNIFORM=ADAPTIVE bundle pairs trained alike on `frames` of phone1080.mp4: PSNR on those (training)
    frames, mean multiply-accumulates per LR pixel under the bundles' labels, and measured CPU time."""
    rows = []
    for pair in pairs:
        results = {}
        for path in pair.split("="):
            b, _, _ = trained_frames(path, frames)
            counts = [(b.labels == k).sum() for k in range(b.chunks)]
            macs = sum(c * a.macs_per_pixel for c, a in zip(counts, b.archs)) / sum(counts)
            quality, seconds = bundle_psnr(path, frames)
            results[path] = {"bundle": Path(path).name, "psnr": quality, "macs": macs, "cpu_s": seconds,
                             "models": ", ".join(f"{a.blocks}x{a.channels}x{a.expansion}" for a in b.archs)}
        uniform, adapted = results.values()
        rows.append({"uniform": uniform, "adaptive": adapted})
        print(f"adaptive {rows[-1]}", flush=True)
    return rows


def _compiled(model, x):
    """torch.compile with weight freezing (oneDNN prepacking and fusion), compiled for x's shape."""
    import torch
    import torch._inductor.config

    torch._inductor.config.freezing = True
    compiled = torch.compile(model)
    start = time.perf_counter()
    with torch.inference_mode():
        _autocast(compiled, x)
    print(f"torch.compile took {time.perf_counter() - start:.1f} s", flush=True)
    return compiled


def _autocast(model, x):
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(x.contiguous(memory_format=torch.channels_last))


PEER_HEADER = ["ORT fps (1 / 2 streams)", "OpenVINO default fps (1 / 2)", "OpenVINO f32 fps (1 / 2)"]


def best_peer(methods: dict) -> str | None:
    """The fastest of vs-mlrt's backends that ran (None where --methods ran none)."""
    return max((k for k in PEERS if k in methods), key=lambda k: methods[k]["fps"], default=None)


def peer_cells(m: dict) -> list[str]:
    """The PEER_HEADER cells: fps of each vs-mlrt backend, 1 / 2 streams ("-" where it did not run)."""
    def fps(k: str) -> str:
        return f"{m[k]['fps']:.2f}" if k in m else "-"
    return [f"{fps(a)} / {fps(b)}" for a, b in (("ort", "ort2"), ("ov", "ov2"), ("ov_f32", "ov2_f32"))]


def peers_table(rows: list[dict]) -> list[str]:
    """Routed filter against one model of its bundle and against vs-mlrt's best backend, per clip and scale; with
    --baseline, the same two of the baseline tree beside them."""
    base = "stdo@base" in rows[0]["methods"]

    def cells(row: dict) -> list[str]:
        m = row["methods"]
        best = best_peer(m)
        routed, one = m["stdo"]["fps"], m["chunk0"]["fps"]
        before = ([f"{m['stdo@base']['fps']:.2f}", f"{m['chunk0@base']['fps']:.2f}",
                   f"{m['chunk0@base']['fps'] / m['stdo@base']['fps']:.2f}"] if base else [])
        cpu = " / ".join(f"{m[k]['cpu_s']:.3f}" if k else "-" for k in ("stdo", "chunk0", best))
        peer = [f"{best} {m[best]['fps']:.2f}", f"**{routed / m[best]['fps']:.2f}**", f"{one / m[best]['fps']:.2f}"] \
            if best else ["-", "-", "-"]
        return [row["clip"], f"{row['size']} x{row['scale']}", row["regions"], f"{routed:.2f}", f"{one:.2f}",
                f"**{one / routed:.2f}**", *before, *peer_cells(m), *peer, cpu]

    return table(["clip", "LR -> HR", "patches / regions per frame", "routed fps", "one model (`chunk:0`) fps",
                  "**routed time / one model**",
                  *(["baseline routed fps", "baseline one model fps", "baseline routed time / one model"] if base else []),
                  *PEER_HEADER, "best peer fps", "**routed / best peer**", "one model / best peer",
                  "CPU s/frame routed / one model / best peer"],
                 [cells(row) for row in rows])


def speed_tables(result: dict) -> list[str]:
    """The filter table and the routing-overhead and engine-path tables, for the parts that ran."""
    peak, rows = result["peak"], result["rows"]
    ours = "bfloat16" if "bfloat16" in peak else "float32"  # what the filter computes in by default here
    lines = ["GEMM peak (2048^3, same run): " + ", ".join(f"{d} {v:.0f} GFLOP/s" for d, v in peak.items())
             + f". Medians of {result['runs']} interleaved runs of {result['frames']} frames."]
    def filter_row(row: dict) -> list[str]:
        m = row["methods"]
        best = best_peer(m)
        fps, peer = m["stdo"]["fps"], m[best]["fps"]
        return [row["preset"], f"{row['size']} x{row['scale']}", f"{fps:.2f}", *peer_cells(m), f"{best} {peer:.2f}",
                f"**{fps / peer:.2f}**", f"{m['chunk0']['fps']:.2f}", f"{m['bicubic']['fps']:.1f}",
                f"{m['stdo']['cpu_s']:.2f} / {m[best]['cpu_s']:.2f}",
                f"{row['gflop'] * fps:.0f} ({100 * row['gflop'] * fps / peak[ours]:.0f} %)",
                f"{row['gflop'] * peer:.0f}", f"{m['stdo']['rss_mb']:.0f} / {m[best]['rss_mb']:.0f}"]

    if rows[0].get("clip"):
        return lines + ["", *peers_table(rows)]
    if rows[0]["methods"]:
        lines += ["", *table(["preset", "LR -> HR", "stdo fps", *PEER_HEADER, "best peer fps",
                              "**stdo / best peer**", "stdo, one model fps", "bicubic fps",
                              "CPU s/frame stdo / best peer", f"eff. GFLOP/s stdo (% {ours} peak)",
                              "eff. GFLOP/s best peer", "peak RSS stdo / best peer (MB)"],
                             [filter_row(row) for row in rows])]
    if "overhead" not in rows[0]:
        return lines
    lines += ["", *table(["preset", "LR -> HR", "regions / patches", "CPU s per frame (1 thread) routed / one model",
                          "**overhead**", "extra MACs (context at chunk borders)",
                          "time outside model calls routed / one"],
                         [[row["preset"], f"{row['size']} x{row['scale']}", f"{o['regions']} / {o['patches']}",
                           f"{o['routed_s']:.3f} / {o['one_s']:.3f}", f"**{100 * o['overhead']:+.0f} %**",
                           f"{100 * o['mac_overhead']:+.0f} %", f"{o['outside_routed']:.3f} / {o['outside_one']:.3f} s"]
                          for row in rows for o in [row["overhead"]]])]
    names = list(rows[0]["paths"])
    lines += ["", *table(["preset", "LR -> HR", *names],
                         [[row["preset"], f"{row['size']} x{row['scale']}", *(f"{row['paths'][n]:.3f}" for n in names)]
                          for row in rows])]
    return lines


def markdown(result: dict) -> str:
    lines = speed_tables(result) if result["rows"] else []
    if result.get("variants"):
        lines += ["", *table(["preset", "LR -> HR", "variant of stdo", "fps", "vs default"],
                             [[v["preset"], f"{v['size']} x{v['scale']}", v["variant"], f"{v['fps']:.2f}",
                               f"{v['fps'] / v['default_fps']:.2f}"] for v in result["variants"]])]
    if result.get("accuracy"):
        lines += ["", *table(["trained bundle", "models", "PSNR float32 (dB)", "PSNR bf16 residual (dB)",
                              "change (dB)"],
                             [[r["bundle"], r["models"], f"{r['fp32']:.3f}", f"{r['bf16']:.3f}", f"{r['delta']:+.4f}"]
                              for r in result["accuracy"]])]
    if result.get("adaptive"):
        lines += ["", *table(["bundle", "chunk models", "PSNR training frames (dB)", "MACs / LR pixel",
                              "CPU s / frame (1 thread)", "cost vs uniform: MACs / measured", "PSNR change"],
                             [[r["bundle"], r["models"], f"{r['psnr']:.3f}", f"{r['macs']:.0f}", f"{r['cpu_s']:.3f}",
                               f"{100 * r['macs'] / u['macs']:.0f} % / {100 * r['cpu_s'] / u['cpu_s']:.0f} %",
                               f"{r['psnr'] - u['psnr']:+.3f} dB"]
                              for row in result["adaptive"] for u in [row["uniform"]] for r in (u, row["adaptive"])])]
    if result.get("levers"):
        lines += ["", *table(["preset", "backend (one 480x270 frame, x4)", "seconds", "ORT / backend"],
                             [[r["preset"], r["backend"], f"{r['seconds']:.3f}", f"{r['vs_ort']:.2f}"]
                              for r in result["levers"]])]
    return "\n".join(lines) + "\n"


VARIANTS = {
    "1 VapourSynth thread": {"vs_threads": 1},
    "1 torch thread per frame": {"torch_threads": 1},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--presets", default="tiny,small,paper")
    p.add_argument("--scales", default="4,2")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--frames", type=int, default=4, help="timed frames per measurement")
    p.add_argument("--workdir", default="out/bench_speed", help="quick bundles and ONNX files are kept here")
    p.add_argument("--bundle", action="append", default=[], metavar="PRESETxSCALE=PATH",
                   help="use this bundle for a preset and scale (e.g. paperx4=paper.stdo)")
    p.add_argument("--parts", default="filter,overhead",
                   help="comma-separated: filter (fps of every method through VapourSynth), overhead (routing "
                        "overhead and engine paths, in process), peers (default-trained bundles on real clips "
                        "against one of their models and vs-mlrt)")
    p.add_argument("--clips", default="phone1080.mp4,bigbuckbunny.mp4,cockatoo.mp4",
                   help="--parts peers: the real clips (scripts/clips.py names) to train bundles on")
    p.add_argument("--peer-steps", type=int, default=2000,
                   help="--parts peers: training steps of their bundles (2000: stdo train's default)")
    p.add_argument("--peer-hr", choices=("1080", "native"), default="1080",
                   help="--parts peers: HR is each clip brought to 1920x1080 (default) or at its own size")
    p.add_argument("--baseline", metavar="TREE",
                   help="--parts peers: also time the routed filter and one model of another checkout of vs-stdo "
                        "(with its .venv), interleaved with this one's (methods stdo@base, chunk0@base)")
    p.add_argument("--methods", default="",
                   help="--parts peers: only these methods (comma-separated: stdo, chunk0 and vs-mlrt's "
                        f"{', '.join(PEERS)}); default all")
    p.add_argument("--variants", action="store_true", help="also time other thread settings (x4 only)")
    p.add_argument("--levers", action="store_true", help="also time the model-level inference backends")
    p.add_argument("--accuracy", nargs="*", default=[], metavar="BUNDLE",
                   help="PSNR of float32 vs bf16 output for these bundles trained on phone1080.mp4 --accuracy-frames")
    p.add_argument("--accuracy-frames", default="0:20",
                   help="the frames of phone1080.mp4 the --accuracy and --adaptive bundles were trained on")
    p.add_argument("--adaptive", nargs="*", default=[], metavar="UNIFORM=ADAPTIVE",
                   help="cost and PSNR of adaptive bundles (stdo train --easy-preset) against uniform ones trained "
                        "alike on phone1080.mp4 --accuracy-frames")
    p.add_argument("--markdown", help="write the tables to this file")
    a = p.parse_args()
    a.parts = set(a.parts.split(","))
    a.methods = set(filter(None, a.methods.split(",")))
    if a.worker:
        print(json.dumps(worker(json.loads(a.worker))))
        return
    given = dict(item.split("=", 1) for item in a.bundle)
    presets, scales = [n for n in a.presets.split(",") if n], [int(s) for s in a.scales.split(",")]
    from vs_stdo.filter.runner import (
        native_bf16,  # where the filter computes in bf16 (else float32: no bf16 peak to time)
    )

    result: dict = {"runs": a.runs, "frames": a.frames, "rows": [], "variants": [],
                    "peak": {d: gemm_peak(d) for d in ("float32", "bfloat16") if d == "float32" or native_bf16()}}
    print(f"GEMM peak: {result['peak']}", flush=True)
    from vs_stdo.core import bundle as bundle_io
    from vs_stdo.core.models import preset as make

    specs: list[tuple[dict, dict]] = []
    for name in presets if a.parts & {"filter", "overhead"} else []:
        for scale in scales:
            bundle, onnx = prepare(name, scale, Path(a.workdir), given)
            size = "480x270" if scale == 4 else "960x540"
            w, h = (int(v) for v in size.split("x"))
            row = {"preset": name, "scale": scale, "size": size, "methods": {}, "bundle": bundle,
                   "gflop": 2 * make(name, scale).macs_per_pixel * w * h / 1e9}
            result["rows"].append(row)
            base = {"scale": scale, "frames": a.frames, "bundle": bundle, "onnx": onnx}
            methods = {"stdo": {"method": "stdo"}, **{k: {"method": k} for k in PEERS},
                       "bicubic": {"method": "bicubic"}, "chunk0": {"method": "stdo", "args": {"route": "chunk:0"}}}
            if a.variants and scale == 4:
                methods |= {v: {"method": "stdo", **extra} for v, extra in VARIANTS.items()}
            specs += [(row, {**base, **m, "name": k}) for k, m in methods.items()]
    for clip in a.clips.split(",") if "peers" in a.parts else []:
        for scale in scales:
            source, bundle, onnx = peer_bundle(clip, scale, a.peer_steps, Path(a.workdir), a.peer_hr)
            lr = bundle_io.load(bundle).clip
            row = {"clip": f"{Path(clip).stem} ({a.peer_steps} steps)", "scale": scale,
                   "size": f"{lr.width}x{lr.height}", "methods": {}, "bundle": bundle, "source": source,
                   "regions": regions_per_frame(bundle, source)}
            result["rows"].append(row)
            base = {"scale": scale, "frames": a.frames, "bundle": str(Path(bundle).resolve()),
                    "onnx": str(Path(onnx).resolve()), "source": str(Path(source).resolve())}
            methods = {"stdo": {"method": "stdo"}, "chunk0": {"method": "stdo", "args": {"route": "chunk:0"}},
                       **{k: {"method": k} for k in PEERS}}
            if a.baseline:
                methods |= {f"{k}@base": {**methods[k], "tree": a.baseline} for k in ("stdo", "chunk0")}
            specs += [(row, {**base, **m, "name": k}) for k, m in methods.items()
                      if not a.methods or k.split("@")[0] in a.methods]
    def measure(row: dict, spec: dict) -> dict:
        got = run_worker({k: v for k, v in spec.items() if k != "name"})
        print(f"{row.get('preset') or row['clip']} x{row['scale']} {spec['name']}: {got['fps']:.3f} fps, "
              f"{got['cpu_s']:.3f} CPU s/frame, {got['rss_mb']:.0f} MB", flush=True)
        return got

    samples = interleaved({i: lambda row=row, spec=spec: measure(row, spec) for i, (row, spec) in enumerate(specs)},
                          a.runs if a.parts & {"filter", "peers"} else 0)
    for i, (row, spec) in enumerate(specs if a.parts & {"filter", "peers"} else []):
        row["methods"][spec["name"]] = {"fps": statistics.median(s["fps"] for s in samples[i]),
                                        "cpu_s": statistics.median(s["cpu_s"] for s in samples[i]),
                                        "rss_mb": max(s["rss_mb"] for s in samples[i])}
    for row in result["rows"]:
        for v in VARIANTS:
            if v in row["methods"]:
                result["variants"].append({"preset": row["preset"], "size": row["size"], "scale": row["scale"],
                                           "variant": v, "fps": row["methods"][v]["fps"],
                                           "default_fps": row["methods"]["stdo"]["fps"]})
    for row in result["rows"] if "overhead" in a.parts and "preset" in result["rows"][0] else []:
        row["overhead"] = routing_overhead(row["bundle"], a.runs)
        print(f"routing overhead {row['preset']} x{row['scale']}: {row['overhead']}", flush=True)
        row["paths"] = engine_paths(row["bundle"], a.runs)
        print(f"engine paths {row['preset']} x{row['scale']}: {row['paths']}", flush=True)
    if a.accuracy:
        result["accuracy"] = accuracy(a.accuracy, a.accuracy_frames)
    if a.adaptive:
        result["adaptive"] = adaptive(a.adaptive, a.accuracy_frames)
    if a.levers:
        result["levers"] = levers(presets, a.runs)
    text = markdown(result)
    print(text)
    if a.markdown:
        Path(a.markdown).write_text(text)


if __name__ == "__main__":
    main()
