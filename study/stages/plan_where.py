"""Where a planned study's trials would run, for `study plan`: this machine, the node
types of a Ray cluster launcher file (cluster.yaml), or the nodes of a running cluster;
how many trials run at once there, and what does not fit.

Nothing is started: a cluster file is read (study.cli.cluster_file prepares it), a
running cluster is joined only to read its nodes' resources, then left.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from study.config.schema import StudyConfig
from study.errors import ConfigError

# Trials on GPUs are planned from the CPU calibration here, scaled (assumed, not measured;
# the plan says so): a whole A10G-class GPU (31 TFLOP/s fp32, 125 bf16 on tensor cores;
# trials train under bf16 autocast) taken as GPU_SPEEDUP times the trial's CPU threads
# here (some 0.02-0.05 TFLOP/s each on this machine's convolutions, README: Performance),
# a trial with gpu_per_trial g getting g of it; a step never under GPU_MIN_STEP_S (a
# small network's step on a GPU is its kernel launches, whatever its FLOPs).
GPU_SPEEDUP = 500.0
GPU_MIN_STEP_S = 0.006
# GPU memory per GPU by AWS instance family (a cluster file's node_config.InstanceType):
# Ray's resources do not declare it. A type not listed is not checked.
GPU_MEMORY_GB = {"g5": 24, "g6": 24, "g4dn": 16, "p3": 16, "p4d": 40, "p4de": 80, "p5": 80}
CUDA_CONTEXT_BYTES = 500 * 2**20  # what a process's CUDA context takes before any tensor


@dataclass(frozen=True)
class NodeGroup:
    """Nodes of one kind: their resources (Ray's CPU and GPU) and how many the plan
    counts on (a node type's max_workers; 1 for a running node)."""

    name: str
    cpu: float
    gpu: float
    count: int = 1
    gpu_memory: float = 0.0  # bytes per GPU, where known (0: not known, not checked)


@dataclass(frozen=True)
class Where:
    """Where the trials run: a line saying it, the node groups, and what was assumed."""

    how: str
    groups: tuple[NodeGroup, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def here(config: StudyConfig) -> Where:
    """This machine, as a local Ray runtime would see it (`resources.num_cpus`, else every
    CPU; its GPUs)."""
    import torch

    cpus = config.resources.num_cpus or os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    notes = ()
    if load > (os.cpu_count() or 1):
        notes = (
            f"this machine's load average is {load:.1f} on {os.cpu_count()} CPUs: other work "
            f"shares them (with the calibration, and with the study): expect longer",
        )
    return Where(
        f"this machine (a local Ray runtime): {cpus} CPUs, {gpus} GPUs",
        (NodeGroup("this machine", float(cpus), float(gpus)),),
        notes,
    )


def running(address: str) -> Where:
    """The live nodes of the Ray cluster at `address` (joined, read, left)."""
    import ray

    from study.tuning.ray_env import address_problem
    from study.tuning.runtime import alive_nodes

    problem = address_problem(address)  # before Ray's own minutes of retries
    if problem:
        raise ConfigError(problem.replace(f"RAY_ADDRESS {address!r}", f"--address {address}"))
    try:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    except Exception as error:  # a connection refused, a version mismatch, ...
        ray.shutdown()
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise ConfigError(f"cannot join the Ray cluster at {address}: {reason}") from None
    try:
        return from_nodes(f"the Ray cluster at {address}", alive_nodes())
    finally:
        ray.shutdown()


def from_nodes(how: str, nodes: list[dict]) -> Where:
    """Live nodes' resources (Ray's dicts) as node groups."""
    groups = tuple(
        NodeGroup(f"node {i + 1}", float(n.get("CPU", 0)), float(n.get("GPU", 0)))
        for i, n in enumerate(nodes)
    )
    cpus, gpus = sum(g.cpu for g in groups), sum(g.gpu for g in groups)
    return Where(f"{how}: {len(groups)} node(s), {cpus:g} CPUs, {gpus:g} GPUs", groups)


def from_cluster_file(name: str, prepared: dict) -> Where:
    """The worker node types of a prepared cluster file, each at its max_workers (the
    cluster's max_workers caps the total, the largest types first); the head runs trials
    only when it declares resources for them or is the only type."""
    head = prepared.get("head_node_type")
    types = prepared.get("available_node_types") or {}
    workers = {k: v for k, v in types.items() if k != head} or types
    left = int(prepared.get("max_workers", 10**6))
    notes = [
        f"{name}: nodes not running; each worker node type counted at its max_workers "
        f"(capped by the cluster's max_workers {left}), node start-up time not counted"
    ]
    groups = []
    ordered = sorted(workers.items(), key=lambda kv: -_size(kv[1].get("resources") or {}))
    for type_name, node in ordered:
        resources = node.get("resources") or {}
        if not resources:
            notes.append(f"{type_name}: no resources declared (Ray detects them): not counted")
            continue
        count = min(int(node.get("max_workers", 0)), left)
        left -= count
        if count > 0:
            cpu, gpu = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
            instance = str((node.get("node_config") or {}).get("InstanceType", ""))
            memory = GPU_MEMORY_GB.get(instance.split(".")[0], 0) * 2**30
            groups.append(NodeGroup(type_name, cpu, gpu, count, memory))
    head_resources = (types.get(head) or {}).get("resources") or {}
    if head in types and head not in workers and head_resources.get("CPU", 0) > 0:
        cpu, gpu = float(head_resources["CPU"]), float(head_resources.get("GPU", 0))
        groups.append(NodeGroup(head, cpu, gpu, 1))
    shown = ", ".join(f"{g.count}x {g.name} ({g.cpu:g} CPU, {g.gpu:g} GPU)" for g in groups)
    return Where(
        f"{name}: {shown or 'no node type with declared resources'}", tuple(groups), tuple(notes)
    )


def _size(resources: dict) -> float:
    return float(resources.get("GPU", 0)) * 1000 + float(resources.get("CPU", 0))


def node_slots(group: NodeGroup, config: StudyConfig) -> int:
    """Trials one node of `group` holds at once."""
    return config.resources.trials_held(group.cpu, group.gpu)


def trial_slots(config: StudyConfig, where: Where) -> int:
    """Trials that run at once: every node's slots, capped by max_concurrent_trials."""
    total = sum(node_slots(group, config) * group.count for group in where.groups)
    limit = config.resources.max_concurrent_trials
    return min(total, limit) if limit else total


def on_gpus(config: StudyConfig, where: Where) -> bool:
    """Whether the trials train on GPUs there (and so at the assumed GPU speed)."""
    return config.resources.gpu_per_trial > 0 and any(g.gpu > 0 for g in where.groups)


def fit_problems(config: StudyConfig, where: Where) -> list[str]:
    """Why no trial of the study could run there (empty when one can): one line."""
    cpu, gpu = config.resources.cpu_per_trial, config.resources.gpu_per_trial
    groups = where.groups
    if any(node_slots(group, config) > 0 for group in groups):
        return []
    most_gpu = max((g.gpu for g in groups), default=0.0)
    most_cpu = max((g.cpu for g in groups), default=0.0)
    if gpu > most_gpu:
        return [
            f"a trial needs {gpu:g} GPUs (resources.gpu_per_trial) but no node has more than "
            f"{most_gpu:g} ({where.how})"
        ]
    if cpu > most_cpu:
        return [
            f"a trial needs {cpu:g} CPUs (resources.cpu_per_trial) but no node has more than "
            f"{most_cpu:g} ({where.how})"
        ]
    return [f"no node can hold one trial (cpu {cpu:g}, gpu {gpu:g}) ({where.how})"]


def memory_problems(config: StudyConfig, where: Where) -> list[str]:
    """A trial whose GPU memory (study.stages.plan_targets.trial_memory, its largest
    architecture at its targets' image size) is more than its share of a GPU on every node
    type whose GPU memory is known: one line."""
    from study.stages.plan_targets import trial_memory

    gpu = config.resources.gpu_per_trial
    known = [g for g in where.groups if g.gpu_memory and g.gpu >= gpu > 0]
    if not known:
        return []
    channels = 3 if config.source.weights == "torchvision" else 1
    side = max(t.image_size for t in config.target_list())
    batch = config.training.batch_size
    need = max(trial_memory(a, side, channels, batch) for a in config.search.architectures)
    need += CUDA_CONTEXT_BYTES
    room = max(g.gpu_memory * min(gpu, 1.0) for g in known)
    if need <= room:
        return []
    return [
        f"a trial needs about {need / 2**30:.1f} GiB of GPU memory (its largest architecture "
        f"at {side} px, batch {batch}), more than its share of a GPU (gpu_per_trial {gpu:g}) "
        f"on any node: {room / 2**30:.1f} GiB ({where.how})"
    ]
