"""The machine description, ``bench/results/<name>.json`` and ``latest.md``."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import redis

from .common import REDIS_URL, Result

__all__ = ["RESULTS", "machine", "render_markdown", "write"]

RESULTS = Path(__file__).parent / "results"
_PACKAGES = ("redis", "hiredis", "httpx", "httpx-aiohttp", "aiohttp", "pydantic", "structlog")


def machine() -> dict[str, Any]:
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    client = redis.Redis.from_url(REDIS_URL)
    try:
        redis_version = str(client.info("server")["redis_version"])
    finally:
        client.close()
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except OSError:
        commit = ""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "-"
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "redis": redis_version,
        "packages": versions,
        "commit": commit,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def write(result: Result, machine_info: dict[str, Any], mode: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    data = {**result.to_dict(), "mode": mode, "machine": machine_info}
    path = RESULTS / f"{result.name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def _num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def render_markdown(order: tuple[str, ...]) -> str:
    """``latest.md`` from every results JSON present (in ``order``)."""
    results = []
    for name in order:
        path = RESULTS / f"{name}.json"
        if path.exists():
            results.append(json.loads(path.read_text()))
    if not results:
        return "No results yet: run `python -m bench`.\n"
    host = results[0]["machine"]
    lines = [
        "# Benchmark results",
        "",
        "Written by `python -m bench` (`make bench`). Ratios compare rows measured in the "
        "same run; absolute numbers on a shared 2-core machine move by ±25 % between runs.",
        "",
        "| machine | |",
        "|---|---|",
        f"| nproc | {host['nproc']} ({host['cpu']}) |",
        f"| memory | {host['memory_gb']} GB |",
        f"| Python | {host['python']} |",
        f"| Redis | {host['redis']} (loopback, sharing the cores) |",
        "| packages | " + ", ".join(f"{k} {v}" for k, v in host["packages"].items()) + " |",
        f"| date | {host['date']} (commit {host['commit'] or '?'}) |",
        f"| load average at start | {host['load_avg_1m_at_start']} |",
        "",
        "## Summary",
        "",
        "| benchmark | ratio(s) | target | met |",
        "|---|---|---|---|",
    ]
    for result in results:
        ratios = ", ".join(f"{k} = {v:g}" for k, v in result["ratios"].items())
        targets = result.get("targets") or ([result["target"]] if result["target"] else [])
        text = "; ".join(t["text"] for t in targets) or "-"
        met = "; ".join("yes" if t["met"] else "**no**" for t in targets) or "-"
        lines.append(f"| {result['title']} | {ratios} | {text} | {met} |")
    for result in results:
        mode = result.get("mode", "?")
        machine_note = (
            "" if result["machine"]["date"] == host["date"] else f", {result['machine']['date']}"
        )
        lines += [
            "",
            f"## {result['title']}",
            "",
            f"`{result['name']}` ({mode} run{machine_note}; "
            + ", ".join(f"{k}={v}" for k, v in result["params"].items())
            + f"; {result['seconds']:.0f} s)",
            "",
            "| | median | unit | role | rounds |",
            "|---|---:|---|---|---|",
        ]
        for row in result["rows"]:
            values = " / ".join(_num(v) for v in row["values"])
            lines.append(
                f"| {row['label']} | {_num(row['median'])} | {row['unit']} | {row['role']} "
                f"| {values} |"
            )
        for note in result["notes"]:
            lines += ["", f"- {note}"]
    return "\n".join(lines) + "\n"
