"""Per-kind workload configs: each kind has exactly the options it reads, an option it never reads is an
error naming the key, the kinds that have it and this kind's keys; the presets compose to their kind."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pytest

from framework.config import check_keys
from framework.errors import ConfigError, user_message
from framework.workloads import PRESETS, SOURCES, load_workload, workload_config
from framework.workloads.arrivals import arrival_times
from framework.workloads.config import WorkloadConfig
from framework.workloads.loader import register_source
from tests.conftest import compose_config
from tests.test_workloads import DATA, HEADER, REPO, needs_data, trace_cfg, write

COMMON = {"name", "kind", "rate_scale", "start_s", "duration_s", "max_requests", "train_fraction",
          "min_output_tokens", "max_output_tokens"}
FILE = {"path", "preset", "sha256"}
ARRIVAL = {"arrival", "rate_rps", "burst_cv", "rate_period_s", "rate_amplitude", "num_requests", "seed",
           "repeat_share", "repeat_templates", "repeat_output_spread", "closed_loop_waiting"}
KEYS = {"prompt_key_column"}  # CSV kinds that may carry prompt hashes (mooncake reads its hash_ids itself)


@pytest.mark.parametrize("kind,keys", [("synthetic", COMMON | ARRIVAL), ("trace", COMMON | FILE | KEYS),
                                       ("mooncake", COMMON | FILE), ("lengths", COMMON | FILE | ARRIVAL | KEYS)])
def test_each_kind_has_exactly_the_options_it_reads(kind, keys):
    assert {f.name for f in fields(SOURCES.entry(kind).config)} == keys


# the options outside scripts set (the contract kept through the split)
CONTRACT = [
    ["workload.arrival=backlog"], ["workload=sharegpt", "workload.arrival=backlog"],
    ["workload.min_output_tokens=5", "workload.max_output_tokens=900"],
    ["workload=azure_conv_2023", "workload.min_output_tokens=5", "workload.max_output_tokens=900"],
    ["workload=sharegpt", "workload.min_output_tokens=500"],
    ["workload=trace", "workload.path=F.csv", "workload.min_output_tokens=2"],
    ["workload=mooncake", "workload.path=F.jsonl", "workload.max_output_tokens=2"],
    ["workload=azure_conv_2023", "workload.train_fraction=0", "workload.max_requests=7"],
    ["workload.rate_rps=3", "workload.max_requests=7"], ["workload=sharegpt", "workload.rate_rps=3"],
    ["workload=azure_code_2024", "workload.start_s=60", "workload.duration_s=60", "workload.rate_scale=8"],
]


@pytest.mark.parametrize("overrides", CONTRACT)
def test_contract_overrides_compose_and_validate(overrides):
    from omegaconf import OmegaConf

    cfg = compose_config(overrides)
    check_keys(cfg)
    wcfg = OmegaConf.to_object(cfg.workload)
    wcfg.validate()
    for ov in overrides:
        key, _, value = ov.partition("=")
        if key.startswith("workload."):
            assert str(getattr(wcfg, key.removeprefix("workload."))) in (value, f"{value}.0")


@pytest.mark.parametrize("overrides,key,kind,others", [
    (["workload=azure_conv_2023", "workload.arrival=backlog"], "arrival", "trace", "lengths, synthetic"),
    (["workload=trace", "workload.num_requests=10"], "num_requests", "trace", "lengths, synthetic"),
    (["workload=mooncake", "workload.seed=3"], "seed", "mooncake", "lengths, synthetic"),
    (["workload=default", "workload.path=x.csv"], "path", "synthetic", "lengths, mooncake, trace"),
])
def test_an_option_the_kind_never_reads_names_it_and_the_kinds_keys(overrides, key, kind, others):
    with pytest.raises(Exception) as e:
        compose_config(overrides)
    msg = user_message(e.value)
    assert msg is not None and f"'workload.{key}': workload kind '{kind}' never reads it" in msg
    assert f"kind(s) {others} only" in msg
    listed = set(re.findall(r"workload\.(\w+)", msg.split("Known:")[1]))
    assert listed == {f.name for f in fields(SOURCES.entry(kind).config)}


def test_plus_prefix_cannot_add_an_option_the_kind_never_reads():
    cfg = compose_config(["workload=azure_conv_2023", "+workload.arrival=backlog"])
    with pytest.raises(ConfigError, match=r"'workload.arrival': workload kind 'trace' never reads it"):
        check_keys(cfg)


def test_a_typo_gets_did_you_mean_within_the_kind():
    with pytest.raises(Exception) as e:
        compose_config(["workload=sharegpt", "workload.arival=backlog"])
    assert "Did you mean 'workload.arrival'?" in user_message(e.value)


def test_kind_is_chosen_by_the_preset_not_by_workload_kind():
    from omegaconf import OmegaConf

    wcfg = OmegaConf.to_object(compose_config(["workload=trace", "workload.kind=mooncake", "workload.path=x"]).workload)
    with pytest.raises(ConfigError, match=r"workload.kind='mooncake' does not match .* kind 'trace'.*workload=NAME"):
        wcfg.validate()


def test_register_source_checks_the_config_kind():
    @dataclass
    class Odd(WorkloadConfig):
        kind: str = field(default="odd")

    with pytest.raises(ValueError, match="has kind 'odd', registered as 'even'"):
        register_source("even", Odd, lambda *a: None, "never registered")
    assert "even" not in SOURCES


# ---------------------------------------------------------------------------------------------------
# configuration errors

@pytest.mark.parametrize("kw,pattern", [
    (dict(kind="traces"), r"workload.kind='traces'.*Did you mean 'trace'"),
    (dict(rate_scale=0.0), r"workload.rate_scale=0.0"),
    (dict(start_s=-1.0), r"workload.start_s=-1.0"),
    (dict(duration_s=0.0), r"workload.duration_s=0.0"),
    (dict(max_requests=0), r"workload.max_requests=0"),
    (dict(train_fraction=1.0), r"workload.train_fraction=1.0"),
    (dict(arrival="bursty"), r"workload.arrival='bursty'"),
    (dict(rate_rps=-2.0), r"workload.rate_rps=-2.0"),
    (dict(arrival="gamma", burst_cv=0.0), r"workload.burst_cv=0.0"),
    (dict(arrival="varying", rate_amplitude=1.5), r"workload.rate_amplitude=1.5"),
    (dict(num_requests=0), r"workload.num_requests=0"),
    (dict(path="x.csv"), r"'workload.path': workload kind 'synthetic' never reads it"),
    (dict(kind="trace", path="x.csv", arrival="backlog"),
     r"'workload.arrival': workload kind 'trace' never reads it.*kind\(s\) lengths, synthetic only"),
    (dict(kind="trace", path="x.csv", num_requets=5), r"'workload.num_requets'.*Known: .*workload.path"),
    (dict(kind="trace"), r"needs a file: set workload.path"),
    (dict(kind="trace", preset="azure_conv_2032"), r"preset='azure_conv_2032'.*Did you mean .*'azure_conv_2023'"),
    (dict(kind="lengths", preset="azure_conv_2023"), r"is a 'trace' source but workload.kind='lengths'"),
])
def test_config_errors(kw, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_workload(workload_config(**kw), 0)


# ---------------------------------------------------------------------------------------------------
# Hydra presets (conf/workload/*.yaml) against the WorkloadConfig schema

CONF = REPO / "conf"
YAMLS = sorted(p.stem for p in (CONF / "workload").glob("*.yaml"))


def _compose(conf_dir: Path, overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from framework.config import register_configs
    register_configs()
    with initialize_config_dir(version_base=None, config_dir=str(conf_dir)):
        return OmegaConf.to_object(compose(overrides=overrides).workload)


def test_expected_presets_exist():
    assert set(YAMLS) >= {"default", "trace", "azure_conv_2023", "azure_code_2023", "azure_conv_2024",
                          "azure_code_2024", "mooncake", "sharegpt"}


@pytest.mark.parametrize("name", YAMLS)
def test_yaml_presets_compose(name):
    text = (CONF / "workload" / f"{name}.yaml").read_text()
    m = re.match(r"defaults:\n  - /schema/workload/(\w+)@_here_\n  - _self_\n", text)
    assert m, "a preset extends its kind's schema first"
    cfg = _compose(CONF, [f"+workload={name}"])
    # the preset composes to its kind's own config class, the one the source registry holds
    assert type(cfg) is SOURCES.entry(m.group(1)).config and cfg.kind == m.group(1) and cfg.name == name
    if getattr(cfg, "preset", None):
        assert cfg.preset == name and PRESETS[name].kind == cfg.kind
    if name in ("trace", "mooncake"):
        with pytest.raises(ConfigError, match="workload.path"):
            load_workload(cfg, 0)


def test_yaml_typo_is_rejected(tmp_path):
    (tmp_path / "workload").mkdir()
    (tmp_path / "workload" / "typo.yaml").write_text("defaults:\n  - /schema/workload/trace@_here_\n  - _self_\n"
                                                     "name: typo\nrate_scal: 2.0\n")
    with pytest.raises(Exception, match="rate_scal"):
        _compose(tmp_path, ["+workload=typo"])


@needs_data
def test_yaml_presets_load(monkeypatch):
    monkeypatch.setenv("BALANCEROUTE_DATA", str(DATA))
    assert len(load_workload(_compose(CONF, ["+workload=azure_code_2023", "workload.max_requests=50"]), 0)) == 57
    w = load_workload(_compose(CONF, ["+workload=sharegpt", "workload.num_requests=100"]), 0)
    assert len(w) == 100 and w.name == "sharegpt"


# ---------------------------------------------------------------------------------------------------
# backlogged arrivals and output-length filters (the papers' saturated regime)

def test_backlog_puts_every_request_at_zero_and_keeps_the_same_lengths():
    a = load_workload(workload_config(kind="synthetic", arrival="backlog", num_requests=50), 3)
    b = load_workload(workload_config(kind="synthetic", arrival="poisson", num_requests=50), 3)
    assert (a.arrival_s == 0).all() and (b.arrival_s > 0).any()
    np.testing.assert_array_equal(a.prompt_tokens, b.prompt_tokens)  # independent streams
    assert (arrival_times("backlog", 4, 1.0, np.random.default_rng(0)) == 0).all()


def test_output_filter_on_a_trace_counts_kept_rows_against_the_cap(tmp_path):
    text = HEADER + "".join(f"2023-11-16 18:15:{i:02d}.0000000,{10 + i},{o}\n"
                            for i, o in enumerate([5, 1500, 20, 1200, 999, 1001, 3000, 7]))
    path = write(tmp_path, "f.csv", text)
    w = load_workload(trace_cfg(path, min_output_tokens=1000, max_output_tokens=2000, train_fraction=0), 0)
    assert w.output_tokens.tolist() == [1500, 1200, 1001]
    assert w.prompt_tokens.tolist() == [11, 13, 15]
    w = load_workload(trace_cfg(path, min_output_tokens=1000, max_output_tokens=2000, max_requests=1,
                                train_fraction=0), 0)
    # the row cap (row_cap(1, 0) = 2) counts filtered rows, not file rows (the first 2 hold only one)
    assert w.output_tokens.tolist() == [1500, 1200]


def test_output_filter_on_lengths_and_synthetic(tmp_path):
    path = write(tmp_path, "l.csv", "num_prefill_tokens,num_decode_tokens\n"
                 + "".join(f"{i + 1},{i * 10 + 1}\n" for i in range(100)))
    w = load_workload(workload_config(kind="lengths", path=str(path), num_requests=300, min_output_tokens=500,
                                     max_output_tokens=700, arrival="backlog"), 0)
    assert w.output_tokens.min() >= 500 and w.output_tokens.max() <= 700 and len(w) == 300
    assert set(w.output_tokens.tolist()) == {i * 10 + 1 for i in range(50, 70)}  # every kept row used
    s = load_workload(workload_config(kind="synthetic", num_requests=200, min_output_tokens=300), 0)
    assert len(s) == 200 and s.output_tokens.min() >= 300


@pytest.mark.parametrize("kw,key", [({"min_output_tokens": 0}, "min_output_tokens"),
                                    ({"max_output_tokens": -3}, "max_output_tokens"),
                                    ({"min_output_tokens": 10, "max_output_tokens": 5}, "min_output_tokens"),
                                    ({"arrival": "backlogged"}, "arrival")])
def test_filter_and_arrival_typos_are_config_errors(kw, key):
    with pytest.raises(ConfigError, match=key):
        load_workload(workload_config(kind="synthetic", num_requests=10, **kw), 0)


def test_a_new_format_is_one_registration(tmp_path):
    """README "Layout": a reader, a config class with only its keys, one register_source; the ConfigStore
    schema, validation, did-you-mean, loading and --help follow from the registration alone."""
    from hydra.core.config_store import ConfigStore

    from framework.help import workload_lines
    from framework.workloads.config import FileFields
    from framework.workloads.window import select

    @dataclass
    class PairsConfig(FileFields):
        kind: str = field(default="pairs", metadata={"help": "lines 't prompt output'"})
        delimiter: str = field(default=" ", metadata={"help": "column separator"})

    def read(cfg, seed, window, meta, path):
        t, p, o = np.loadtxt(path, delimiter=cfg.delimiter, ndmin=2).T
        return select(t, p.astype(np.int64), o.astype(np.int64), window, meta, str(path))

    f = tmp_path / "pairs.txt"
    f.write_text("0 10 3\n1 20 4\n5 30 5\n")
    register_source("pairs", PairsConfig, read, "test-only pairs format")
    try:
        assert "pairs.yaml" in ConfigStore.instance().repo["schema"]["workload"]
        w = load_workload(workload_config("pairs", path=str(f), rate_scale=2.0, train_fraction=0), 0)
        assert w.arrival_s.tolist() == [0.0, 0.5, 2.5] and w.prompt_tokens.tolist() == [10, 20, 30]
        with pytest.raises(ConfigError, match=r"'workload.delimeter'.*Did you mean 'workload.delimiter'"):
            workload_config("pairs", path=str(f), delimeter=",")
        with pytest.raises(ConfigError, match=r"'workload.delimiter': workload kind 'synthetic' never reads it"
                                              r".*kind\(s\) pairs only"):
            workload_config("synthetic", delimiter=",")
        assert any(ln.startswith("  kind=pairs  test-only pairs format") for ln in workload_lines(None))
    finally:
        SOURCES.unregister("pairs")
    assert "pairs" not in SOURCES and "pairs.yaml" not in ConfigStore.instance().repo["schema"]["workload"]
