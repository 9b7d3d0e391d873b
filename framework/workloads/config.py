"""Typed workload configs, one per ``workload.kind``: each kind has exactly the options it reads.

Why per kind: one flat table let ``workload=azure_conv_2023 workload.arrival=backlog`` run and silently
ignore the arrival process (a trace has its own times). Here each kind is a dataclass in Hydra's
ConfigStore (``schema/workload/KIND``, stored by the source registry, framework.workloads.loader), so
Hydra rejects an option the kind never reads, naming the key and the kind's keys.

Shape: ``WorkloadConfig`` holds what every kind reads (window, time compression, caps, train split,
output filter); ``FileFields`` the file of a file kind (path, preset, sha256); ``ArrivalFields`` the arrival
process and request count of a kind that draws its requests (synthetic, lengths). A new kind is a class
combining these (plus its own fields), registered with its reader by ``register_source``.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Optional

from framework.errors import ConfigError, did_you_mean
from framework.registry import Checks


@dataclass
class WorkloadConfig(Checks):
    """What every workload kind reads: which window of the requests to simulate, and how fast."""

    check_prefix: ClassVar[str] = "workload"

    name: str = "default"
    kind: str = field(default="", metadata={
        "help": "set by the preset (workload=NAME); the kind's options are listed under it"})
    rate_scale: float = field(default=1.0, metadata={"help": "compress time: arrivals at t / rate_scale"})
    start_s: float = field(default=0.0, metadata={"help": "window start, seconds into the trace"})
    duration_s: Optional[float] = field(default=None, metadata={"help": "window length (trace seconds)"})
    max_requests: Optional[int] = field(default=None, metadata={"help": "simulate at most this many"})
    train_fraction: float = field(default=0.1, metadata={
        "help": "this share of the window's first requests is history for learned classifiers, never "
                "simulated (0 = simulate every request); with max_requests it comes on top"})
    min_output_tokens: Optional[int] = field(default=None, metadata={
        "help": "keep only requests with at least this many output tokens (every kind; applied before "
                "the window's row cap and the train split)"})
    max_output_tokens: Optional[int] = field(default=None, metadata={
        "help": "keep only requests with at most this many output tokens (every kind)"})

    def validate(self) -> None:
        """ConfigError naming the first invalid value; each kind adds its own checks (super() first)."""
        from framework.workloads.loader import SOURCES

        entry = SOURCES.entry(self.kind)  # unknown kind: did-you-mean
        if not isinstance(self, entry.config):  # type: ignore[arg-type]
            raise ConfigError(f"workload.kind={self.kind!r} does not match the options composed for kind "
                              f"{type(self).kind_name()!r}: a kind is chosen with its preset, "
                              f"workload=NAME (e.g. {_preset_hint(self.kind)}), not by workload.kind.")
        self.require_number("rate_scale", 0, "a positive number (2 = twice as many requests per second)",
                            strict=True)
        self.require_number("start_s", 0, ">= 0 (seconds into the trace)")
        if self.duration_s is not None:
            self.require_number("duration_s", 0, "> 0 seconds, or null for 'to the end'", strict=True)
        if self.max_requests is not None:
            self.require_number("max_requests", 1, ">= 1, or null for 'all'", integer=True)
        self.require(0.0 <= self.train_fraction < 1.0, "train_fraction", "must be in [0, 1).")
        lo, hi = self.min_output_tokens, self.max_output_tokens
        for key, v in (("min_output_tokens", lo), ("max_output_tokens", hi)):
            if v is not None:
                self.require_number(key, 1, ">= 1 (tokens), or null for no bound")
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"workload.min_output_tokens={lo} > workload.max_output_tokens={hi}: no request "
                              "can pass both; lower the minimum or raise the maximum.")

    @classmethod
    def kind_name(cls) -> str:
        return next(f.default for f in fields(cls) if f.name == "kind")  # type: ignore[return-value]

    @classmethod
    def unknown_option(cls, full_key: str) -> str:
        """The message for a key this kind does not have: which kinds do have it, and this kind's keys."""
        from framework.workloads.loader import SOURCES

        key = full_key.rpartition(".")[2]
        mine = [f.name for f in fields(cls)]
        others = [e.name for e in SOURCES.entries() if e.config is not None and e.config is not cls
                  and key in {f.name for f in fields(e.config)}]
        where = (f" It is an option of workload kind(s) {', '.join(others)} only (e.g. "
                 f"{_preset_hint(others[0])}).") if others else ""
        return (f"Unknown key {full_key!r}: workload kind {cls.kind_name()!r} never reads it.{where}"
                + did_you_mean(key, mine, prefix="workload.", cutoff=0.6))


def _preset_hint(kind: str) -> str:
    """A preset of ``kind`` for messages: its conf/workload YAML name, else the kind itself."""
    return {"synthetic": "workload=default", "lengths": "workload=sharegpt",
            "trace": "workload=azure_conv_2023"}.get(kind, f"workload={kind}")


@dataclass
class FileFields(WorkloadConfig):
    """The file a file kind reads: a path, or a named preset resolved from the data folder or a download."""

    preset: Optional[str] = field(default=None, metadata={
        "help": "a published file by name (the kind's presets: workload=NAME sets it)"})
    path: Optional[str] = field(default=None, metadata={"help": "file to read (overrides preset lookup)"})
    sha256: Optional[str] = field(default=None, metadata={"help": "expected hash of path, if checked"})

    def validate(self) -> None:
        super().validate()
        from framework.workloads import presets

        if not self.path and not self.preset:
            same = [n for n, pr in presets.PRESETS.items() if pr.kind == self.kind]
            choice = f" or a workload.preset ({', '.join(same)})" if same else ""
            raise ConfigError(f"workload.kind={self.kind} needs a file: set workload.path=FILE{choice}.")
        if self.preset and not self.path:
            want = presets.get_preset(self.preset).kind
            if want != self.kind:
                raise ConfigError(f"workload.preset={self.preset!r} is a {want!r} source but workload.kind="
                                  f"{self.kind!r}: use `workload={self.preset}`.")


@dataclass
class ArrivalFields(WorkloadConfig):
    """A kind that draws its requests: how many, and the arrival process they follow (from the seed)."""

    arrival: str = field(default="poisson", metadata={
        "help": "poisson | gamma | varying | backlog (every request at t = 0) | closed_loop (keep "
                "closed_loop_waiting requests waiting)"})
    closed_loop_waiting: Optional[int] = field(default=None, metadata={
        "help": "arrival=closed_loop: release a request whenever fewer than this many wait"})
    rate_rps: float = field(default=40.0, metadata={"help": "mean arrival rate (requests/s)"})
    burst_cv: float = field(default=3.0, metadata={"help": "gamma: coefficient of variation of gaps"})
    rate_period_s: float = field(default=60.0, metadata={"help": "varying: period of the rate sinusoid"})
    rate_amplitude: float = field(default=0.5, metadata={"help": "varying: relative amplitude in [0,1)"})
    num_requests: int = field(default=3000, metadata={"help": "requests generated"})
    seed: Optional[int] = field(default=None, metadata={"help": "draws the requests; defaults to the run's seed"})
    repeat_share: float = field(default=0.0, metadata={
        "help": "SYNTHETIC repeated prompts: this share of requests repeats one of repeat_templates "
                "prompts (framework/workloads/repeats.py; 0 = off)"})
    repeat_templates: int = field(default=50, metadata={"help": "repeat_share: distinct repeated prompts"})
    repeat_output_spread: float = field(default=0.0, metadata={
        "help": "repeat_share: a repeat's output is the template's x U[1 - e, 1 + e] (0 = the same)"})

    def validate(self) -> None:
        super().validate()
        from framework.workloads.arrivals import ARRIVALS

        self.require(0.0 <= self.repeat_share <= 1.0, "repeat_share", "must be in [0, 1] (0 = no repeats).")
        self.require_number("repeat_templates", 1, integer=True)
        self.require(0.0 <= self.repeat_output_spread < 1.0, "repeat_output_spread", "must be in [0, 1).")

        if self.arrival not in ARRIVALS:
            raise ConfigError(f"workload.arrival={self.arrival!r} is not an arrival process."
                              + did_you_mean(self.arrival, ARRIVALS))
        self.require_number("rate_rps", 0, "a positive rate (requests per second)", strict=True)
        self.require_number("num_requests", 1, ">= 1", integer=True)
        if self.arrival == "closed_loop":
            self.require((self.closed_loop_waiting or 0) >= 1, "closed_loop_waiting", "must be >= 1 with "
                         "workload.arrival=closed_loop (requests kept waiting), e.g. workload.closed_loop_waiting=64.")
        if self.arrival == "gamma":
            self.require_number("burst_cv", 0, "> 0 (1 = Poisson, larger = burstier)", strict=True)
        if self.arrival == "varying":
            self.require_number("rate_period_s", 0, "> 0 seconds", strict=True)
            self.require(0.0 <= self.rate_amplitude <= 1.0, "rate_amplitude",
                         "must be in [0, 1] (relative amplitude of the rate sinusoid).")


@dataclass
class KeyColumnField(WorkloadConfig):
    """A CSV kind may carry prompt hashes (the ExactMatch predictor keys on them)."""

    prompt_key_column: Optional[str] = field(default=None, metadata={
        "help": "CSV column of prompt hashes; null = auto (prompt_hash | hash | hash_ids | prompt_key if "
                "present), none = no keys"})


@dataclass
class SyntheticWorkloadConfig(ArrivalFields):
    """Embedded lognormal lengths and an arrival process (no file); fully determined by the seed."""

    kind: str = field(default="synthetic", metadata={"help": "embedded lengths, no file"})


@dataclass
class TraceWorkloadConfig(FileFields, KeyColumnField):
    """An Azure-format CSV (2023 or 2024 timestamps): its own arrival times and lengths."""

    kind: str = field(default="trace", metadata={"help": "Azure-format CSV (presets azure_*_2023/2024)"})


@dataclass
class MooncakeWorkloadConfig(FileFields):
    """A Mooncake jsonl trace (timestamp in ms, input_length, output_length, hash_ids)."""

    kind: str = field(default="mooncake", metadata={"help": "Mooncake jsonl"})


@dataclass
class LengthsWorkloadConfig(FileFields, ArrivalFields, KeyColumnField):
    """A table of prompt/output lengths (e.g. ShareGPT), resampled, with an arrival process."""

    kind: str = field(default="lengths", metadata={"help": "lengths table (preset sharegpt) + arrivals"})


def workload_config(kind: str = "synthetic", **values: Any) -> WorkloadConfig:
    """The validated config of ``kind`` from keyword options (for code and tests; the CLI composes it).

    An option the kind does not have is a ConfigError naming it, the kinds that have it and this
    kind's keys, as on the command line.
    """
    from framework.workloads.loader import SOURCES

    cls = SOURCES.entry(kind).config
    assert cls is not None
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(cls.unknown_option(f"workload.{unknown[0]}"))  # type: ignore[attr-defined]
    cfg = cls(**values)
    cfg.validate()
    return cfg
