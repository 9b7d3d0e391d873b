"""Workload presets: the data folder first, else a hash-checked download into the cache (file:// addresses
stand in for the published ones, so no network is needed)."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

import pytest

from framework.errors import TraceFormatError
from framework.workloads import PRESETS, load_workload, presets, workload_config
from tests.test_workloads import GOOD, HEADER, azure_2024_text, write


# ---------------------------------------------------------------------------------------------------
# presets: data folder, cache and download (file:// addresses: no network)

@pytest.fixture
def isolated_presets(tmp_path, monkeypatch):
    """No data folder, an empty cache; presets may be pointed at local files."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr(presets, "data_dirs", lambda: [data])
    monkeypatch.setenv("BALANCEROUTE_CACHE", str(tmp_path / "cache"))
    return data


def _point_preset(monkeypatch, name: str, src: Path, sha256: str | None) -> None:
    monkeypatch.setitem(PRESETS, name, dataclasses.replace(PRESETS[name], url=src.as_uri(), sha256=sha256))


def test_preset_from_data_folder_2024(tmp_path, isolated_presets):
    text, ns, p, _ = azure_2024_text(500, seed=4)
    (isolated_presets / "AzureLLMInferenceTrace_code_1week.csv").write_text(text)
    cfg = workload_config(kind="trace", preset="azure_code_2024", max_requests=100, train_fraction=0.0)
    w = load_workload(cfg, 0)
    assert w.prompt_tokens.tolist() == p[:101].tolist() and w.meta["found_in"] == "data_dir"
    good = hashlib.sha256(text.encode()).hexdigest()
    assert load_workload(dataclasses.replace(cfg, sha256=good), 0).meta["sha256"] == good
    with pytest.raises(TraceFormatError, match=rf"sha256 of .* is {good}, expected 0+"):
        load_workload(dataclasses.replace(cfg, sha256="0" * 64), 0)


def test_preset_download_checks_hash_and_caches(tmp_path, isolated_presets, monkeypatch):
    text, ns, p, _ = azure_2024_text(200, seed=5)
    src = write(tmp_path, "published.csv", text)
    good = hashlib.sha256(text.encode()).hexdigest()
    _point_preset(monkeypatch, "azure_conv_2024", src, good)
    cfg = workload_config(kind="trace", preset="azure_conv_2024")
    w = load_workload(cfg, 0)
    cached = tmp_path / "cache" / "AzureLLMInferenceTrace_conv_1week.csv"
    assert w.source == str(cached) and cached.read_text() == text and w.meta["found_in"] == "cache"
    assert w.prompt_tokens.tolist() == p.tolist()
    src.unlink()  # second load comes from the cache, no download
    assert len(load_workload(cfg, 0)) == 200


def test_preset_download_hash_mismatch(tmp_path, isolated_presets, monkeypatch):
    src = write(tmp_path, "published.csv", HEADER + GOOD)
    _point_preset(monkeypatch, "azure_conv_2023", src, "ab" * 32)
    with pytest.raises(TraceFormatError, match=r"does not have the expected sha256.*workload.sha256"):
        load_workload(workload_config(kind="trace", preset="azure_conv_2023"), 0)
    assert not (tmp_path / "cache" / "AzureLLMInferenceTrace_conv.csv").exists()
    # a user-pinned hash overrides the preset's
    good = hashlib.sha256((HEADER + GOOD).encode()).hexdigest()
    w = load_workload(workload_config(kind="trace", preset="azure_conv_2023", sha256=good), 0)
    assert len(w) == 1


def test_preset_unknown_hash_logs_computed_hash(tmp_path, isolated_presets, monkeypatch, caplog):
    src = write(tmp_path, "published.csv", HEADER + GOOD)
    _point_preset(monkeypatch, "azure_code_2024", src, None)
    with caplog.at_level(logging.WARNING, logger="balanceroute.workloads"):
        load_workload(workload_config(kind="trace", preset="azure_code_2024"), 0)
    assert hashlib.sha256((HEADER + GOOD).encode()).hexdigest() in caplog.text


def test_preset_unreachable(tmp_path, isolated_presets, monkeypatch):
    _point_preset(monkeypatch, "sharegpt", tmp_path / "gone.csv", PRESETS["sharegpt"].sha256)
    with pytest.raises(TraceFormatError, match=r"preset 'sharegpt'.*not in the data folders.*BALANCEROUTE_DATA"
                                               r".*workload.path"):
        load_workload(workload_config(kind="lengths", preset="sharegpt"), 0)


def test_wrong_file_in_data_folder_fails_hash(isolated_presets):
    (isolated_presets / "AzureLLMInferenceTrace_code.csv").write_text(HEADER + GOOD)
    with pytest.raises(TraceFormatError, match=r"sha256 of .*expected 54e9a6d2"):
        load_workload(workload_config(kind="trace", preset="azure_code_2023"), 0)


def test_data_dirs_env_first(tmp_path, monkeypatch):
    monkeypatch.setenv("BALANCEROUTE_DATA", str(tmp_path))
    assert presets.data_dirs()[0] == tmp_path
