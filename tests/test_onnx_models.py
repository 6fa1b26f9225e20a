"""Running ONNX graphs on CPU: the thread count sessions default to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prefroute.onnx_models import physical_cores

SYSFS = Path("/sys/devices/system/cpu")


def sysfs_cores(cpus: set[int]) -> int:
    """Distinct (package, core) pairs of ``cpus``, read from sysfs: a second source,
    independent of the /proc/cpuinfo that ``physical_cores`` reads."""
    cores = set()
    for cpu in cpus:
        topology = SYSFS / f"cpu{cpu}" / "topology"
        package = (topology / "physical_package_id").read_text().strip()
        cores.add((package, (topology / "core_id").read_text().strip()))
    return len(cores)


needs_topology = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity") or not (SYSFS / "cpu0" / "topology").is_dir(),
    reason="needs Linux CPU affinity and sysfs topology",
)


@needs_topology
def test_physical_cores_agree_with_sysfs_topology() -> None:
    allowed = os.sched_getaffinity(0)
    assert physical_cores() == sysfs_cores(allowed)


@needs_topology
def test_physical_cores_follow_the_affinity_mask() -> None:
    """A process pinned to one CPU gets one thread, however many cores the machine has."""
    allowed = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(allowed)})
        assert physical_cores() == 1
    finally:
        os.sched_setaffinity(0, allowed)
    assert os.sched_getaffinity(0) == allowed
