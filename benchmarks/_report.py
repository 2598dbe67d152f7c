"""What every benchmark report starts and ends with: provenance, then the table."""

import datetime
import os
import platform
import statistics
import subprocess
import time


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux), else what the platform module says."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(repo):
    """The commit benchmarked, the machine and the time, as one line."""
    commit = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (f"git {commit}{' with uncommitted changes' if dirty else ''}; "
            f"{cpu_model()}, {os.cpu_count()} cores; "
            f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")


def emit(lines, output=None):
    """Print the whole report after the rows printed as they came, and write it to ``output``."""
    report = "\n".join(lines)
    print()
    print(report)
    if output:
        with open(output, "w") as f:
            f.write(report + "\n")


def median_times(fns, repeats, warmup=1):
    """Median seconds per call of each function in ``fns`` (a dict), after ``warmup``
    calls of each; the repeats are interleaved, so a disturbance falls on all of them."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {key: [] for key in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(t) for key, t in times.items()}
