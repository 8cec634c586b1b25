"""GPU efficiency of the trial code: its training step against a bare PyTorch loop, its
bf16 MFU, and several trials sharing one GPU.

Sections (each prints one clear line if it fails, and the next one goes on):

  env      torch, CUDA and the device
  peak     bf16 matmul peak: the best 8192^3 torch.mm of this run (on CPU: float32)
  steps    the trial's step against a bare loop, for resnet50 at 224 px (batch 256) and
           the default study's cnn4 at 32 px (its batch, 32). The trial's step is what a
           trial runs (trainables.loops.train_steps via bench.common.bare_trainer: the
           registry's model, channels_last, the trial's param groups in Adam with its
           cosine schedule, batches drawn on the device, bf16 autocast); the bare loop is
           the same model hand-written: channels_last, autocast, Adam, one fixed batch,
           nothing else. Images/s of both, their ratio, and MFU = 3 x forward FLOPs per
           image (study.cli.archs.forward_flops) x images/s / peak.
  packing  K = 1, 2, 4, 8 trial processes (cnn4, 32 px, batch 32, 2 threads each) on the
           one GPU at once: aggregate images/s, speedup over K = 1, scaling K=1 x K.

    python bench/gpu.py [--out DIR] [--budget SECONDS]   # where CUDA is
    python bench/gpu.py --tiny                           # CPU rehearsal, tiny sizes

--quick is --tiny without CUDA, a shorter run with it. --budget shrinks the later
sections so the run ends in time; --out DIR writes gpu.jsonl (a JSON object a figure)
and gpu.txt (what it printed, with tracebacks). Prints the ratio last: the trial's step
over the bare loop's, the worse of the two architectures (goal: >= 0.95).
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import queue
import subprocess
import threading
import time
import traceback

import torch
import torch.nn.functional as F

from bench.common import bare_trainer, ratio_line

T0 = time.perf_counter()
GOAL = 0.95
CASES = [("resnet50", 224, 256), ("cnn4", 32, 32)]  # (arch, px, batch)
TINY_CASES = [("resnet50", 32, 2), ("cnn4", 32, 8)]
PACK, TINY_PACK = ("cnn4", 32, 32), ("cnn4", 32, 8)
KS, TINY_KS = (1, 2, 4, 8), (1, 2)
CLASSES = 10


class Report:
    """Lines to stdout (and gpu.txt), figures to gpu.jsonl, when there is an --out."""

    def __init__(self, out: str | None):
        self.txt = self.jsonl = None
        if out:
            Path(out).mkdir(parents=True, exist_ok=True)
            self.txt = open(Path(out) / "gpu.txt", "a", buffering=1)  # noqa: SIM115
            self.jsonl = open(Path(out) / "gpu.jsonl", "a", buffering=1)  # noqa: SIM115

    def line(self, text: str, file_only: bool = False) -> None:
        if not file_only:
            print(text, flush=True)
        if self.txt:
            self.txt.write(text + "\n")

    def record(self, section: str, **figures) -> None:
        if self.jsonl:
            row = {"section": section, "t": round(time.perf_counter() - T0, 2), **figures}
            self.jsonl.write(json.dumps(row, default=str) + "\n")


class Budget:
    def __init__(self, seconds: float):
        self.deadline = T0 + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def run_section(report: Report, name: str, fn, *args) -> None:
    started = time.perf_counter()
    try:
        fn(report, *args)
    except Exception as error:  # noqa: BLE001  (one section's failure must not end the run)
        report.line(f"[{name}] FAILED: {type(error).__name__}: {str(error)[:300]}")
        report.line(traceback.format_exc(), file_only=True)
        report.record(name, error=f"{type(error).__name__}: {error}")
        free_cuda()
    report.record(name, seconds=round(time.perf_counter() - started, 2))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def free_cuda() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def get_arch(name: str):
    """The registry's spec; if its discovery fails on importing timm (version skew on the
    GPU machine), again without timm: the timm-only names go, none is used here."""
    from trainables import registry

    try:
        return registry.get_arch(name)
    except Exception:  # noqa: BLE001
        sys.modules["timm"] = None  # type: ignore[assignment]
        return registry.get_arch(name)


# --------------------------------------------------------------------------- the loops


def images(size: int, batch: int, device: torch.device):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator).to(device)
    return x, torch.randint(0, CLASSES, (batch,), generator=generator).to(device)


def build(arch: str, device: torch.device):
    torch.manual_seed(0)
    spec = get_arch(arch)
    model = spec.build(CLASSES, 3).to(device)
    if device.type == "cuda":  # as trainables.train.prepare does
        model = model.to(memory_format=torch.channels_last)
    return spec, model


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.is_cuda else x


def trial_loop(arch: str, x: torch.Tensor, y: torch.Tensor, batch: int):
    """What a trial runs: step(n) of trainables.loops.train_steps with the trial's param
    groups (a finetune at the default study's mid-range lr, lr mult, weight decay)."""
    from trainables.transfer import param_groups

    spec, model = build(arch, x.device)
    groups = param_groups(model, spec, 1e-3, 0.55, 1e-4)
    return bare_trainer(model, channels_last(x), y, batch, groups=groups)


def bare_loop(arch: str, x: torch.Tensor, y: torch.Tensor, batch: int):
    """The same model in the shortest loop PyTorch allows: one fixed batch, no sync."""
    _, model = build(arch, x.device)
    x, cuda = channels_last(x), x.is_cuda
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step(n: int) -> None:
        for _ in range(n):
            with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return step


def timed(step, device: torch.device, seconds: float, warmup: int) -> tuple[int, float]:
    """(steps, their seconds): after `warmup` steps, steps doubled until they take a
    quarter of `seconds`, then as many as fill `seconds`."""
    step(warmup)
    sync(device)
    n = 1
    while True:
        started = time.perf_counter()
        step(n)
        sync(device)
        took = time.perf_counter() - started
        if took >= seconds / 4 or n >= 512:
            break
        n *= 2
    n = max(2, int(seconds / (took / n)))
    started = time.perf_counter()
    step(n)
    sync(device)
    return n, time.perf_counter() - started


# --------------------------------------------------------------------------- sections


def section_env(report: Report, state: dict) -> None:
    device = state["device"]
    facts = {"torch": torch.__version__, "cuda": torch.version.cuda, "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        facts |= {"gpu": props.name, "capability": f"{props.major}.{props.minor}",
                  "gpu_gib": round(props.total_memory / 2**30), "cudnn": torch.backends.cudnn.version()}  # fmt: skip
        torch.zeros(1, device=device)  # the CUDA context, here rather than in a timed section
    facts["threads"] = torch.get_num_threads()
    report.line("env: " + ", ".join(f"{k} {v}" for k, v in facts.items()))
    report.record("env", **facts)


def matmul_rate(n: int, dtype, device: torch.device, repeats: int, inner: int) -> float:
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    c = torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=c)
        sync(device)
        best = min(best, (time.perf_counter() - started) / inner)
    return 2 * n**3 / best


def section_peak(report: Report, state: dict) -> None:
    device = state["device"]
    if device.type == "cuda":
        n, dtype, repeats, inner = 8192, torch.bfloat16, 8, 20
    else:
        n, dtype, repeats, inner = (256 if state["tiny"] else 1024), torch.float32, 3, 2
    state["peak"] = matmul_rate(n, dtype, device, repeats, inner)
    kind = f"{str(dtype).removeprefix('torch.')} {n}^3 torch.mm"
    report.line(f"peak: {state['peak'] / 1e12:.4g} TFLOP/s ({kind}, best of {repeats} x {inner})")
    report.record("peak", kind=kind, tflops=state["peak"] / 1e12)


def section_steps(report: Report, state: dict, budget: Budget) -> None:
    from study.cli.archs import forward_flops

    device, tiny = state["device"], state["tiny"]
    cases = TINY_CASES if tiny else CASES
    # what is left after the packing section's share, over 2 measurements a case, each
    # with about 3 s of building, warm-up and calibration around its timed steps
    seconds = 0.2 if tiny else max(0.5, min(3.0, (budget.left() * 0.4) / (2 * len(cases)) - 3))
    report.line(f"steps: {len(cases)} cases x (trial, bare), ~{seconds:.1f} s timed each")
    for arch, size, batch in cases:
        if budget.left() < 20 and not tiny:
            report.line(f"{arch}: skipped ({budget.left():.0f} s of the budget left)")
            continue
        per_image = 3 * forward_flops(get_arch(arch), CLASSES, 3, size, 1)[0]
        x, y = images(size, batch, device)
        rates, mfus = {}, {}
        for variant, loop in (("trial", trial_loop), ("bare", bare_loop)):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            steps, took = timed(loop(arch, x, y, batch), device, seconds, 1 if tiny else 5)
            rates[variant] = steps * batch / took
            mfu = per_image * rates[variant] / state["peak"] if state.get("peak") else None
            mfus[variant] = mfu or float("nan")
            gib = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0.0
            report.line(
                f"{arch:8s} {size:3d}px b{batch:<3d} {variant:5s} {rates[variant]:9.0f} img/s "
                f"{1000 * took / steps:7.2f} ms/step  MFU {mfu or float('nan'):6.1%}  "
                f"{gib:5.2f} GiB  ({steps} steps)"
            )
            report.record("steps", arch=arch, size=size, batch=batch, variant=variant,
                          steps=steps, seconds=took, images_per_s=rates[variant], mfu=mfu,
                          mem_peak_gib=gib)  # fmt: skip
            free_cuda()
        state["ratios"][arch] = rates["trial"] / rates["bare"]
        state["mfu"][arch] = mfus
        report.line(f"{arch}: trial step / bare loop = {state['ratios'][arch]:.3f}")
        report.record("steps", arch=arch, ratio=state["ratios"][arch])


def section_packing(report: Report, state: dict, budget: Budget) -> None:
    tiny = state["tiny"]
    ks, (arch, size, batch) = (TINY_KS, TINY_PACK) if tiny else (KS, PACK)
    threads = 1 if tiny else 2
    spec = json.dumps({"arch": arch, "size": size, "batch": batch, "threads": threads})
    window = 1.5 if tiny else max(2.0, min(10.0, (budget.left() - 30) / len(ks) - 1))
    report.line(f"packing: {max(ks)} trial processes ({arch} {size}px b{batch}, {threads} "
                f"threads each), windows of {window:.1f} s for K = {', '.join(map(str, ks))}")  # fmt: skip
    procs, replies = [], queue.Queue()
    try:
        for i in range(max(ks)):
            proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", spec],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            )  # fmt: skip
            procs.append(proc)
            threading.Thread(target=pump, args=(i, proc, replies), daemon=True).start()
        ready = collect(
            replies, len(procs), "ready", timeout=min(90.0, max(15.0, budget.left() - 20))
        )
        if len(ready) < len(procs):
            report.line(f"packing: {len(ready)} of {len(procs)} processes ready in time")
        single = None
        for k in ks:
            if k > len(ready) or budget.left() < window + 5:
                report.line(f"K={k}: skipped ({len(ready)} ready, {budget.left():.0f} s left)")
                continue
            command = json.dumps({"start_at": time.time() + 0.3, "seconds": window})
            for i in sorted(ready)[:k]:
                procs[i].stdin.write(command + "\n")
                procs[i].stdin.flush()
            util = gpu_utilization(window / 2 + 0.3) if state["device"].type == "cuda" else None
            results = collect(replies, k, "result", timeout=window + 30)
            total = sum(r["images"] / r["seconds"] for r in results.values())
            single = single or (total if k == 1 else None)
            speedup = total / single if single else float("nan")
            report.line(
                f"K={k}: {total:9.0f} img/s aggregate ({len(results)}/{k} reporting), speedup "
                f"{speedup:.2f}x, scaling {speedup / k:.1%}"
                + (f", nvidia-smi {util}" if util else "")
            )
            report.record("packing", k=k, aggregate_images_per_s=total, speedup=speedup,
                          scaling=speedup / k, reporting=len(results), window_s=window,
                          nvidia_smi=util)  # fmt: skip
            state["packing"][k] = speedup / k
    finally:
        for proc in procs:
            try:
                proc.stdin.close()  # the worker's end of input: it exits
                proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()


def pump(index: int, proc: subprocess.Popen, replies: queue.Queue) -> None:
    for raw in proc.stdout:
        if raw.startswith("{"):
            replies.put((index, json.loads(raw)))


def collect(replies: queue.Queue, wanted: int, event: str, timeout: float) -> dict:
    """Up to `wanted` replies of `event` from the workers, by worker, within `timeout`."""
    found, deadline = {}, time.perf_counter() + timeout
    while len(found) < wanted and time.perf_counter() < deadline:
        try:
            index, message = replies.get(timeout=0.5)
        except queue.Empty:
            continue
        if message.get("event") == event:
            found[index] = message
        elif message.get("event") == "error":
            print(f"packing: process {index} failed: {message['error']}", flush=True)
    return found


def gpu_utilization(after: float) -> str | None:
    time.sleep(after)
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        return done.stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        return None


def worker(spec_json: str) -> int:
    """A packing process: the trial loop, warmed up; then, per line of input, steps for a
    window from a common start time, answered with its images and seconds."""

    def say(**message) -> None:
        print(json.dumps(message), flush=True)

    spec = json.loads(spec_json)
    torch.set_num_threads(spec["threads"])
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        x, y = images(spec["size"], spec["batch"], device)
        step = trial_loop(spec["arch"], x, y, spec["batch"])
        step(3)
        sync(device)
        say(event="ready")
        for line in sys.stdin:
            command = json.loads(line)
            time.sleep(max(0.0, command["start_at"] - time.time()))
            started, steps = time.time(), 0
            while time.time() < command["start_at"] + command["seconds"]:
                step(5)
                steps += 5
            sync(device)
            say(event="result", images=steps * spec["batch"], seconds=time.time() - started)
    except Exception as error:  # noqa: BLE001
        say(event="error", error=f"{type(error).__name__}: {error}")
        return 1
    return 0


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="CPU rehearsal: tiny sizes")
    parser.add_argument("--quick", action="store_true", help="--tiny without CUDA, else shorter")
    parser.add_argument("--out", help="folder for gpu.jsonl and gpu.txt")
    parser.add_argument("--budget", type=float, default=150.0, help="seconds for the whole run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker)
    cuda = torch.cuda.is_available()
    tiny = args.tiny or (args.quick and not cuda)
    if not cuda and not tiny:
        print(f"bench/gpu.py: no CUDA device here (torch {torch.__version__}): run it on a GPU "
              f"machine, or with --tiny for a CPU rehearsal")  # fmt: skip
        return 2
    if tiny:
        torch.set_num_threads(1)  # a small shared CPU: one thread as a trial has
    budget = Budget(min(args.budget, 60.0) if args.quick and cuda else args.budget)
    report = Report(args.out)
    state = {"device": torch.device("cuda" if cuda else "cpu"), "tiny": tiny, "ratios": {},
             "packing": {}, "mfu": {}}  # fmt: skip
    run_section(report, "env", section_env, state)
    run_section(report, "peak", section_peak, state)
    run_section(report, "steps", section_steps, state, budget)
    run_section(report, "packing", section_packing, state, budget)
    report.line(f"done in {time.perf_counter() - T0:.0f} s (budget {args.budget:.0f} s)")
    for k, scaling in state["packing"].items():
        report.line(f"packing K={k}: scaling {scaling:.1%}")
    for arch, value in state["ratios"].items():
        mfu = state["mfu"][arch]
        report.line(
            f"{arch}: trial step / bare loop {value:.3f}, MFU trial {mfu['trial']:.1%}, "
            f"bare {mfu['bare']:.1%}"
        )
    if not state["ratios"]:
        report.line("no ratio: the steps section measured nothing (see above)")
        return 1
    worst = min(state["ratios"], key=state["ratios"].get)
    report.line(
        ratio_line(f"trial step / bare loop ({worst}, the worse)", state["ratios"][worst], GOAL)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
