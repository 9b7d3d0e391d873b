"""A deployment emulator: one process serving G lockstep DP ranks over vLLM's OpenAI-compatible API.

    python -m framework.live.emulator --workers G --port PORT [--cluster PRESET] [--time-scale X]

Serves POST /v1/completions (streaming SSE or not; ``prompt`` as token ids or text), GET /v1/models and
GET /metrics (vllm:num_requests_running / _waiting / kv_cache_usage_perc gauges, vllm:prompt_tokens_total
and vllm:generation_tokens_total counters, each labelled engine="<rank>"), on 127.0.0.1 unless --host.
A request is pinned by the X-data-parallel-rank header (or SGLang's body field routed_dp_rank); an
out-of-range rank is answered 400, as vLLM does. POST /emulator/fault {"rank": g, "mode": ...} injects a
fault for tests: refuse (503), hang (never answer), drop (cut streams after their first token), garbage
(a non-JSON chunk after the first token), none.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from framework.cluster import ClusterConfig
from framework.live.engine import CANCELLED, Engine, EmuRequest

FAULT_MODES = ("none", "refuse", "hang", "drop", "garbage")
MODEL = "balanceroute-emulator"


class _EngineCollector:
    """Builds the vllm:* families from the engine's state at scrape time."""

    def __init__(self, engine: Engine, model: str) -> None:
        self.engine, self.model = engine, model

    def collect(self):
        e, lab = self.engine, ["engine", "model_name"]
        fams = {
            "running": GaugeMetricFamily("vllm:num_requests_running", "Requests running (incl. prefill)", labels=lab),
            "waiting": GaugeMetricFamily("vllm:num_requests_waiting", "Requests waiting", labels=lab),
            "kv_usage": GaugeMetricFamily("vllm:kv_cache_usage_perc", "KV-cache usage, 1 = full", labels=lab),
        }
        prompt = CounterMetricFamily("vllm:prompt_tokens", "Prefill tokens processed", labels=lab)
        gen = CounterMetricFamily("vllm:generation_tokens", "Generation tokens processed", labels=lab)
        for g in range(e.G):
            key = [str(g), self.model]
            for k, v in e.gauges(g).items():
                fams[k].add_metric(key, v)
            prompt.add_metric(key, e.ranks[g].counters.prompt_tokens)
            gen.add_metric(key, e.ranks[g].counters.generation_tokens)
        yield from fams.values()
        yield prompt
        yield gen


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"object": "error", "message": message, "type": "BadRequestError",
                              "code": status}, status=status)


class EmulatorApp:
    """HTTP front of an Engine; the routes of the module docstring."""

    def __init__(self, engine: Engine, model: str = MODEL, max_model_len: int = 1 << 20) -> None:
        self.engine, self.model, self.max_model_len = engine, model, max_model_len
        self.faults = ["none"] * engine.G
        self.registry = CollectorRegistry()
        self.registry.register(_EngineCollector(engine, model))
        self.app = web.Application()
        self.app.add_routes([web.post("/v1/completions", self.completions), web.get("/v1/models", self.models),
                             web.get("/metrics", self.metrics), web.get("/health", self.health),
                             web.post("/emulator/fault", self.fault)])
        self.app.on_startup.append(self._start)
        self.app.on_cleanup.append(self._stop)

    async def _start(self, app: web.Application) -> None:
        self._task = asyncio.create_task(self.engine.run())

    async def _stop(self, app: web.Application) -> None:
        self._task.cancel()

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{
            "id": self.model, "object": "model", "owned_by": "balanceroute", "max_model_len": self.max_model_len,
            "emulator": {"workers": self.engine.G, "cluster": self.engine.cluster.name,
                         "time_scale": self.engine.time_scale}}]})

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(text="")

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain")

    async def fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        rank, mode = int(body.get("rank", -1)), str(body.get("mode", ""))
        if not 0 <= rank < self.engine.G or mode not in FAULT_MODES:
            return _error(400, f"fault needs rank in 0..{self.engine.G - 1} and mode in {FAULT_MODES}")
        self.faults[rank] = mode
        return web.json_response({"rank": rank, "mode": mode})

    def _parse(self, request: web.Request, body: dict) -> tuple[int, int, int] | web.Response:
        """(rank, prompt tokens, max_tokens) or the 400 a vLLM server would answer."""
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON object")
        prompt = body.get("prompt")
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) for t in prompt):
            n_prompt = len(prompt)
        elif isinstance(prompt, str) and prompt:
            n_prompt = max(1, len(prompt.split()))  # the emulator has no tokenizer: one token a word
        else:
            return _error(400, "prompt must be a non-empty string or list of token ids")
        max_tokens = body.get("max_tokens", 16)
        if not isinstance(max_tokens, int) or max_tokens < 1:
            return _error(400, f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if n_prompt + max_tokens > self.max_model_len:
            return _error(400, f"prompt ({n_prompt}) + max_tokens ({max_tokens}) exceeds max_model_len "
                               f"{self.max_model_len}")
        raw = request.headers.get("X-data-parallel-rank",
                                  body.get("routed_dp_rank", body.get("data_parallel_rank")))
        if raw is None:  # no pin: the engine's own balancing, least busy first
            rank = min(range(self.engine.G), key=lambda g: (self.engine.gauges(g)["running"]
                                                            + self.engine.gauges(g)["waiting"], g))
        else:
            try:
                rank = int(raw)
            except (TypeError, ValueError):
                return _error(400, f"data parallel rank {raw!r} is not an integer")
            if not 0 <= rank < self.engine.G:
                return _error(400, f"data parallel rank {rank} is out of range [0, {self.engine.G})")
        return rank, n_prompt, max_tokens

    async def completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(400, "request body is not valid JSON")
        parsed = self._parse(request, body)
        if isinstance(parsed, web.Response):
            return parsed
        rank, n_prompt, max_tokens = parsed
        fault = self.faults[rank]
        if fault == "refuse":
            return _error(503, f"rank {rank} is unavailable (injected fault)")
        if fault == "hang":
            await asyncio.sleep(1e9)
        req = self.engine.submit(rank, n_prompt, max_tokens)
        try:
            if body.get("stream"):
                return await self._stream(request, body, req)
            while req.generated < req.max_tokens and req.state != CANCELLED:
                req.wake.clear()
                await req.wake.wait()
            return web.json_response(self._chunk(req, "x" * req.generated, "length", usage=True))
        finally:
            self.engine.cancel(req)  # no-op when finished; frees a disconnected client's request

    def _chunk(self, req: EmuRequest, text: str, finish: str | None, usage: bool, choices: bool = True) -> dict:
        d: dict = {"id": f"cmpl-{req.rid}", "object": "text_completion", "created": int(time.time()),
                   "model": self.model,
                   "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}] if choices else []}
        if usage:
            d["usage"] = {"prompt_tokens": req.prompt, "completion_tokens": req.generated,
                          "total_tokens": req.prompt + req.generated}
        return d

    async def _stream(self, request: web.Request, body: dict, req: EmuRequest) -> web.StreamResponse:
        opts = body.get("stream_options") or {}
        continuous = bool(opts.get("continuous_usage_stats"))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        sent = 0
        while sent < req.max_tokens:
            if req.generated <= sent:
                if req.state == CANCELLED:
                    return resp
                req.wake.clear()
                await req.wake.wait()
                continue
            if self.faults[req.rank] == "drop" and sent >= 1:
                request.transport.close()  # cut the connection mid-stream, as a crashed rank would
                return resp
            if self.faults[req.rank] == "garbage" and sent >= 1:
                await resp.write(b"data: {not json\n\n")
            sent += 1
            finish = "length" if sent == req.max_tokens else None
            chunk = self._chunk(req, "x", finish, usage=continuous)
            if continuous:
                chunk["usage"]["completion_tokens"] = sent
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        if opts.get("include_usage"):
            await resp.write(b"data: " + json.dumps(self._chunk(req, "", None, True, choices=False)).encode() + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def load_cluster(preset: str) -> ClusterConfig:
    """conf/cluster/PRESET.yaml merged onto the typed ClusterConfig (unknown keys rejected); no Hydra
    compose, which would import every policy and make the emulator slow to start."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from framework.errors import ConfigError, did_you_mean

    conf = Path(__file__).resolve().parents[2] / "conf" / "cluster"
    path = conf / f"{preset}.yaml"
    if not path.exists():
        raise ConfigError(f"Unknown cluster preset {preset!r}." + did_you_mean(preset, [p.stem for p in conf.glob("*.yaml")]))
    raw = OmegaConf.load(path)
    raw.pop("defaults", None)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ClusterConfig), raw))
    except OmegaConfBaseException as e:
        raise ConfigError(f"{path}: {e}") from e


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m framework.live.emulator", description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, required=True, help="G, data-parallel ranks")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    ap.add_argument("--cluster", default="fixed", help="conf/cluster preset: limits and step cost")
    ap.add_argument("--time-scale", type=float, default=1.0, help="wall seconds per model second")
    ap.add_argument("--max-model-len", type=int, default=1 << 20)
    ap.add_argument("--model", default=MODEL)
    for k in ("c0", "c_seq", "c_kv", "c_pf", "c_sync"):
        ap.add_argument(f"--{k.replace('_', '-')}", type=float, default=None, help=f"override cost.{k} (s)")
    ap.add_argument("--max-running", type=int, default=None)
    ap.add_argument("--kv-capacity", type=int, default=None)
    a = ap.parse_args(argv)
    from framework.errors import UserError, report

    try:
        cluster = load_cluster(a.cluster)
    except UserError as e:
        ap.exit(report("emulator", e))
    for k in ("c0", "c_seq", "c_kv", "c_pf", "c_sync"):
        if getattr(a, k) is not None:
            setattr(cluster.cost, k, getattr(a, k))
    if a.max_running is not None:
        cluster.max_running = a.max_running
    if a.kv_capacity is not None:
        cluster.kv_capacity_tokens = a.kv_capacity
    if a.workers < 1 or a.time_scale <= 0:
        ap.error("--workers must be >= 1 and --time-scale > 0")
    from framework.live.run import raise_fd_limit

    raise_fd_limit()
    emu = EmulatorApp(Engine(a.workers, cluster, a.time_scale), a.model, a.max_model_len)
    web.run_app(emu.app, host=a.host, port=a.port, print=None, access_log=None, shutdown_timeout=1.0)


if __name__ == "__main__":
    main()
