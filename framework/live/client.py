"""One streamed completion against one rank, with a timeout on every wait, and failures classified.

The router must tell three things apart (DESIGN.md 4, faults): a rank that is unavailable (refused,
5xx, or no first token in time) is marked down and its request re-routed; a stream that breaks after
its first token is retried or failed; a request the deployment rejects (4xx) is a configuration error
that stops the run. Garbage on the stream counts as a broken stream, naming what arrived.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from framework.live.config import LiveBackendConfig

RANK_HEADER = "X-data-parallel-rank"


class RankUnavailable(Exception):
    """No first token: connection refused, a 5xx, or a timeout before any token."""


class StreamBroken(Exception):
    """The stream ended, timed out or sent garbage after its first token."""


class Rejected(Exception):
    """The deployment answered 4xx: the request as configured can never succeed."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


@dataclass
class Target:
    """Where a rank's requests go and how they are pinned."""

    url: str
    rank: int
    pin: str  # header | sglang | endpoint

    def pin_request(self, body: dict) -> dict[str, str]:
        """Pin by header (vLLM), header + body field (SGLang) or not at all (one endpoint per rank)."""
        if self.pin == "endpoint":
            return {}
        if self.pin == "sglang":
            body["routed_dp_rank"] = self.rank
        return {RANK_HEADER: str(self.rank)}


def completion_body(model: str, prompt_ids: list[int], max_tokens: int) -> dict:
    """The trace's lengths as a request: token-id prompt, exactly max_tokens out (ignore_eos)."""
    return {"model": model, "prompt": prompt_ids, "max_tokens": int(max_tokens), "ignore_eos": True,
            "temperature": 0.0, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}}


def _tokens_in(chunk: dict, so_far: int) -> tuple[int, bool]:
    """(tokens streamed so far, whether this chunk carried a completion choice)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise ValueError("chunk has no 'choices' list")
    usage = chunk.get("usage")
    if choices:
        if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
            return max(so_far, usage["completion_tokens"]), True
        return so_far + 1, True
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return max(so_far, usage["completion_tokens"]), False
    return so_far, False


@dataclass
class Watch:
    """Progress of one stream, read by the router's watchdog (a timer per chunk would cost more than
    the chunk): ``last`` is when data last arrived, ``got`` the tokens so far."""

    last: float
    got: int = 0
    timed_out: bool = False

    def overdue(self, now: float, cfg: LiveBackendConfig) -> bool:
        wait = cfg.token_timeout_s if self.got else cfg.first_token_timeout_s
        return now - self.last > wait


async def stream_completion(session: aiohttp.ClientSession, target: Target, body: dict,
                            cfg: LiveBackendConfig, on_tokens: Callable[[int], None], watch: Watch) -> int:
    """Send ``body`` to ``target``, call ``on_tokens(total)`` as tokens stream; return the final count.

    Waiting for data is bounded by the router's watchdog, which cancels this coroutine after setting
    ``watch.timed_out``; the caller turns that into RankUnavailable or StreamBroken.
    """
    headers = target.pin_request(body)
    try:
        async with asyncio.timeout(cfg.connect_timeout_s):
            resp = await session.post(f"{target.url}/v1/completions", json=body, headers=headers)
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        raise RankUnavailable(f"rank {target.rank} at {target.url}: {type(e).__name__}: {e}") from e
    try:
        if resp.status >= 500 or resp.status == 429:
            raise RankUnavailable(f"rank {target.rank}: HTTP {resp.status}: {(await _text(resp))[:200]}")
        if resp.status >= 400:
            raise Rejected(resp.status, await _text(resp))
        buf = b""
        async for data in resp.content.iter_any():
            watch.last = time.monotonic()
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    return watch.got
                try:
                    total, _ = _tokens_in(json.loads(payload), watch.got)
                except (ValueError, TypeError, AttributeError) as e:
                    raise StreamBroken(f"rank {target.rank} sent garbage after {watch.got} token(s): "
                                       f"{payload[:120]!r}") from e
                if total > watch.got:
                    watch.got = total
                    on_tokens(total)
        err = StreamBroken if watch.got else RankUnavailable
        raise err(f"rank {target.rank}: stream ended after {watch.got} token(s) without [DONE]")
    except (RankUnavailable, StreamBroken, Rejected):
        raise
    except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as e:
        err = StreamBroken if watch.got else RankUnavailable
        raise err(f"rank {target.rank} after {watch.got} token(s): {type(e).__name__}: {e}") from e
    finally:
        resp.release()


async def _text(resp: aiohttp.ClientResponse) -> str:
    try:
        async with asyncio.timeout(5):
            return await resp.text()
    except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
        return "<unreadable body>"
