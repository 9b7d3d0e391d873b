"""Named workload presets resolved to a local file: data folder first, else a hash-checked download.

Lookup order for a preset's file:
1. $BALANCEROUTE_DATA/<file>, then <repo root>/../shared/data/<file> (when that folder exists);
2. the download cache ($BALANCEROUTE_CACHE, default ~/.cache/balanceroute): fetched once from the
   published address with pooch, which checks the sha256 before moving the file into place.
The 2023 Azure files and the ShareGPT table have known hashes. The 2024 week-long Azure files' hashes
were not known when this was written (no network): they are downloaded unchecked unless the user pins one
with ``workload.sha256=...``; after such a download the computed hash is logged so it can be pinned.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from framework.errors import ConfigError, TraceFormatError, did_you_mean

log = logging.getLogger("balanceroute.workloads")

_AZURE_RAW = "https://raw.githubusercontent.com/Azure/AzurePublicDataset/master/data/"
_AZURE_BLOB = "https://azurepublicdatasettraces.blob.core.windows.net/azurellminfererencetrace/"
_SARATHI_RAW = "https://raw.githubusercontent.com/microsoft/sarathi-serve/main/data/processed_traces/"


@dataclass(frozen=True)
class Preset:
    """A published trace: the kind of reader it needs, its file name, address and sha256 (if known)."""

    name: str
    kind: str
    filename: str
    url: str
    sha256: str | None
    about: str


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("azure_conv_2023", "trace", "AzureLLMInferenceTrace_conv.csv",
           _AZURE_RAW + "AzureLLMInferenceTrace_conv.csv",
           "2f1e5b666d4e3055fdbba98598ce2ec307767b9064e03e2fa46676dbcc7d0bf8",
           "Azure LLM inference 2023, conversation: 19,366 requests over 58 min (CC-BY-4.0, Splitwise)"),
    Preset("azure_code_2023", "trace", "AzureLLMInferenceTrace_code.csv",
           _AZURE_RAW + "AzureLLMInferenceTrace_code.csv",
           "54e9a6d2a4bd06ba1e060304b900abbc74cbea53de96506e60fe5bb4f2277fb6",
           "Azure LLM inference 2023, code completion: 8,819 requests over 57 min (CC-BY-4.0, Splitwise)"),
    Preset("azure_conv_2024", "trace", "AzureLLMInferenceTrace_conv_1week.csv",
           _AZURE_BLOB + "AzureLLMInferenceTrace_conv_1week.csv", None,
           "Azure LLM inference 2024, conversation, one week: ~27.3 M requests, ~1.1 GB (CC-BY-4.0, DynamoLLM)"),
    Preset("azure_code_2024", "trace", "AzureLLMInferenceTrace_code_1week.csv",
           _AZURE_BLOB + "AzureLLMInferenceTrace_code_1week.csv", None,
           "Azure LLM inference 2024, code, one week: ~16.8 M requests, ~0.7 GB (CC-BY-4.0, DynamoLLM)"),
    # published as sharegpt_8k_filtered_stats_llama2_tokenizer.csv (same bytes, same hash)
    Preset("sharegpt", "lengths", "sharegpt_8k_lengths_llama2_tokenizer.csv",
           _SARATHI_RAW + "sharegpt_8k_filtered_stats_llama2_tokenizer.csv",
           "6d6c296302a853e2669a674a96f269283e60c57e60363bd450588a1066919f9f",
           "ShareGPT prompt/output token counts (Llama-2 tokenizer), 30,731 rows (sarathi-serve, Apache-2.0)"),
)}


def get_preset(name: str) -> Preset:
    """The preset called ``name`` or a ConfigError with the closest names."""
    if name not in PRESETS:
        raise ConfigError(f"workload.preset={name!r} is not a known trace preset." + did_you_mean(name, PRESETS))
    return PRESETS[name]


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def data_dirs() -> list[Path]:
    """Folders searched for preset files, in order: $BALANCEROUTE_DATA, then ../shared/data."""
    dirs = []
    env = os.environ.get("BALANCEROUTE_DATA")
    if env:
        dirs.append(Path(env).expanduser())
    shared = repo_root().parent / "shared" / "data"
    if shared.is_dir():
        dirs.append(shared)
    return dirs


def cache_dir() -> Path:
    """Where downloads are kept: $BALANCEROUTE_CACHE, default ~/.cache/balanceroute."""
    return Path(os.environ.get("BALANCEROUTE_CACHE") or Path.home() / ".cache" / "balanceroute").expanduser()


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _normalise_hash(h: str) -> str:
    h = h.strip().lower()
    return h.split(":", 1)[1] if h.startswith("sha256:") else h


def verify_sha256(path: Path, expected: str, fix: str) -> None:
    """Raise a TraceFormatError if ``path``'s sha256 is not ``expected``."""
    got = sha256_of(path)
    if got != _normalise_hash(expected):
        raise TraceFormatError(f"sha256 of {str(path)!r} is {got}, expected {_normalise_hash(expected)}: the "
                               f"file is corrupt or a different version. {fix}")


def _downloader(url: str, output_file, pooch_obj) -> None:  # noqa: ANN001 (pooch's signature)
    """pooch downloader that also accepts file:// addresses (mirrors, offline tests)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        src = Path(unquote(parsed.path))
        if not src.is_file():
            raise FileNotFoundError(f"{src} does not exist")
        if hasattr(output_file, "write"):
            with open(src, "rb") as f:
                shutil.copyfileobj(f, output_file)
        else:
            shutil.copyfile(src, output_file)
        return
    import pooch
    pooch.HTTPDownloader(progressbar=False, timeout=60)(url, output_file, pooch_obj)


def download(preset: Preset, sha256: str | None = None) -> Path:
    """Fetch ``preset`` into the cache (once) with pooch, checking its sha256 when one is known."""
    import pooch

    known = _normalise_hash(sha256) if sha256 else preset.sha256
    folder = cache_dir()
    hint = (f"Download {preset.url} yourself and set BALANCEROUTE_DATA to its folder, or pass "
            f"workload.path=/path/to/{preset.filename}.")
    try:
        out = Path(pooch.retrieve(preset.url, known_hash=known, fname=preset.filename, path=folder,
                                  downloader=_downloader, progressbar=False))
    except ValueError as exc:
        if "hash" in str(exc).lower():
            raise TraceFormatError(f"the download of preset {preset.name!r} from {preset.url} does not have "
                                   f"the expected sha256 ({exc}). The published file may have changed: check "
                                   f"it and pin its hash with workload.sha256=..., or {hint}") from None
        raise TraceFormatError(f"could not download preset {preset.name!r} from {preset.url}: {exc}. {hint}") from None
    except Exception as exc:  # network errors come in many types (requests, OSError, ...)
        raise TraceFormatError(f"preset {preset.name!r} ({preset.filename}) is not in the data folders "
                               f"{[str(d) for d in data_dirs()] or '(none)'} nor in the cache {str(folder)!r}, "
                               f"and downloading it from {preset.url} failed ({type(exc).__name__}: {exc}). "
                               f"{hint}") from None
    if known is None:
        got = sha256_of(out)
        log.warning("preset %s: %s has sha256 %s (not checked: no known hash). Pin it with workload.sha256=%s",
                    preset.name, out, got, got)
    return out


def resolve(preset_name: str, sha256: str | None = None) -> tuple[Path, dict]:
    """Local path of a preset's file (data folder, else cache/download) and how it was found."""
    preset = get_preset(preset_name)
    expected = sha256 or preset.sha256
    for d in data_dirs():
        candidate = d / preset.filename
        if candidate.is_file():
            if expected:
                verify_sha256(candidate, expected, f"Replace it with the published file ({preset.url}) "
                              "or point BALANCEROUTE_DATA elsewhere.")
            return candidate, {"preset": preset.name, "found_in": "data_dir", "sha256": expected}
    out = download(preset, sha256)
    return out, {"preset": preset.name, "found_in": "cache", "sha256": expected}
