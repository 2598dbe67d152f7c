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


def peer_arguments(description, repeats):
    """The command line of a benchmark against PyTorch: ``--threads``, ``--repeats``, ``--output``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="threads for both numlstm and torch (default: os.cpu_count() = %(default)s)")
    parser.add_argument("--repeats", type=int, default=repeats)
    parser.add_argument("--output", help="also write the report to this file")
    return parser


def import_torch(script):
    """PyTorch, the peer, or None after saying how to install it (then exit with 2)."""
    try:
        import torch
    except ImportError:
        import sys

        print(f"{script} needs PyTorch, the peer it compares against, and it is not installed.\n"
              "Install the benchmark extra:  pip install '.[bench]'   (or: pip install torch)", file=sys.stderr)
        return None
    return torch


def peer_start(script, description, argv, repeats, repo):
    """The start of a benchmark against PyTorch: ``(args, torch, title, load)``, both libraries
    set to ``--threads`` threads, ``title`` the report's first line (versions, threads,
    :func:`provenance`) and ``load`` the load average now; ``torch`` None (say exit 2) where
    PyTorch is not installed."""
    args = peer_arguments(description, repeats).parse_args(argv)
    torch = import_torch(script)
    if torch is None:
        return args, None, None, None
    import numlstm

    torch.set_num_threads(args.threads)
    numlstm.set_num_threads(args.threads)
    title = (f"numlstm {numlstm.__version__} vs torch {torch.__version__}, {args.threads} thread(s) each, float32; "
             f"{provenance(repo)}")
    return args, torch, title, " ".join(f"{v:.2f}" for v in os.getloadavg())
