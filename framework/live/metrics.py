"""Per-engine figures from a server's Prometheus /metrics (vLLM's vllm:* families, engine="<rank>").

Parsed with prometheus_client's text parser. Gauges: vllm:num_requests_running, vllm:num_requests_waiting,
vllm:kv_cache_usage_perc (older releases: vllm:gpu_cache_usage_perc; both are read). Counters:
vllm:prompt_tokens_total and vllm:generation_tokens_total. Series of one engine are summed over the
other labels (a server may label by model name too).
"""
from __future__ import annotations

import asyncio
from collections import defaultdict

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

FIELDS = {
    "vllm:num_requests_running": "running", "vllm:num_requests_waiting": "waiting",
    "vllm:kv_cache_usage_perc": "kv_usage", "vllm:gpu_cache_usage_perc": "kv_usage",
    "vllm:prompt_tokens_total": "prompt_tokens", "vllm:generation_tokens_total": "generation_tokens",
}


class MetricsFormatError(ValueError):
    """A /metrics body that is not Prometheus text."""


def parse_engine_metrics(text: str) -> dict[int, dict[str, float]]:
    """engine rank -> {running, waiting, kv_usage, prompt_tokens, generation_tokens} (those present)."""
    out: dict[int, dict[str, float]] = defaultdict(dict)
    try:
        for fam in text_string_to_metric_families(text):
            for smp in fam.samples:
                key = FIELDS.get(smp.name)
                if key is None:
                    continue
                eng = smp.labels.get("engine", "0")
                try:
                    g = int(eng)
                except ValueError:
                    continue
                out[g][key] = out[g].get(key, 0.0) + float(smp.value)
    except (ValueError, TypeError, IndexError) as e:
        raise MetricsFormatError(f"not Prometheus text: {e}") from e
    return dict(out)


async def scrape(session: aiohttp.ClientSession, url: str, timeout_s: float) -> dict[int, dict[str, float]]:
    """GET url/metrics and parse it; raises on a network error, a non-200 or a malformed body."""
    async with asyncio.timeout(timeout_s):
        async with session.get(f"{url}/metrics") as resp:
            if resp.status != 200:
                raise MetricsFormatError(f"{url}/metrics answered HTTP {resp.status}")
            return parse_engine_metrics(await resp.text())


async def scrape_ranks(session: aiohttp.ClientSession, urls: list[str], header_mode: bool,
                       timeout_s: float) -> dict[int, dict[str, float]]:
    """rank -> figures. One endpoint: its engine labels are the ranks. One per rank: rank = URL index."""
    if header_mode:
        try:
            return await scrape(session, urls[0], timeout_s)
        except (aiohttp.ClientError, OSError, TimeoutError, MetricsFormatError):
            return {}
    res = await asyncio.gather(*(scrape(session, u, timeout_s) for u in urls), return_exceptions=True)
    out: dict[int, dict[str, float]] = {}
    for g, r in enumerate(res):
        if isinstance(r, dict):
            merged: dict[str, float] = defaultdict(float)
            for vals in r.values():
                for k, v in vals.items():
                    merged[k] += v
            out[g] = dict(merged)
    return out
