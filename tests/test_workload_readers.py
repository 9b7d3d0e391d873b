"""Workload readers, second half: the Mooncake jsonl reader, and bad Azure input (every case names the file,
the line or the column)."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from framework.errors import ConfigError, TraceFormatError, UserError
from framework.workloads import load_workload, workload_config
from framework.workloads.azure import read_azure_csv
from framework.workloads.mooncake import read_mooncake
from framework.workloads.window import Window
from tests.test_workloads import GOOD, HEADER, trace_cfg, write


# ---------------------------------------------------------------------------------------------------
# mooncake

def test_mooncake_reader(tmp_path):
    recs = [{"timestamp": 1000, "input_length": 10, "output_length": 2, "hash_ids": [1, 2]},
            {"timestamp": 1500, "input_length": 11, "output_length": 3, "hash_ids": [1]},
            {"timestamp": 1250, "input_length": 12, "output_length": 4, "hash_ids": []},
            {"timestamp": 1500, "input_length": 13, "output_length": 5, "hash_ids": []}]
    f = write(tmp_path, "m.jsonl", "\n".join(json.dumps(r) for r in recs) + "\n\n")
    w = load_workload(workload_config(kind="mooncake", path=str(f), rate_scale=0.5), 0)
    np.testing.assert_allclose(w.arrival_s, [0.0, 0.5, 1.0, 1.0])
    assert w.prompt_tokens.tolist() == [10, 12, 11, 13]  # stable: 11 before 13 (equal times)
    assert w.meta["sorted_by_loader"] is True


@pytest.mark.parametrize("line,pattern", [
    ('{"timestamp": 1, "input_length": 5}', r"line 2 .*no field 'output_length'.*'timestamp', 'input_length'"),
    ('{"timestamp": 1, "input_length": 5, "output_length": 0}', r"line 2 .*output_length is 0"),
    ('{"timestamp": 1, "input_length": 5.5, "output_length": 1}', r"line 2 .*input_length is 5.5"),
    ('{"timestamp": "x", "input_length": 5, "output_length": 1}', r"line 2 .*timestamp is 'x'"),
    ('{"timestamp": 1, "input_length": 5,', r"line 2 .*not valid JSON"),
])
def test_mooncake_errors(tmp_path, line, pattern):
    f = write(tmp_path, "bad.jsonl", '{"timestamp": 0, "input_length": 1, "output_length": 1}\n' + line + "\n")
    with pytest.raises(TraceFormatError, match=pattern):
        read_mooncake(f)


# ---------------------------------------------------------------------------------------------------
# bad Azure input: every case names the file, the line or the column



@pytest.mark.parametrize("body,pattern", [
    ("2023-11-16 18:15:47.0,abc,5\n", r"line 3 of .*ContextTokens is 'abc', not a whole number"),
    ("2023-11-16 18:15:47.0,12,-3\n", r"line 3 of .*GeneratedTokens is -3; every request needs at least 1"),
    ("2023-11-16 18:15:47.0,0,3\n", r"line 3 of .*ContextTokens is 0"),
    ("2023-11-16 18:15:47.0,12.5,3\n", r"line 3 of .*ContextTokens is '12.5'"),
    ("2023-11-16 18:15:47.0,,3\n", r"line 3 of .*ContextTokens is ''"),
    ("2023-11-16 25:15:47.0,1,3\n", r"line 3 of .*TIMESTAMP '2023-11-16 25:15:47.0' is not a timestamp"),
    ("yesterday,1,3\n", r"line 3 of .*TIMESTAMP 'yesterday'"),
    ("2023-11-16 18:15:47.0+00:00,1,3\n", r"line 3 of .*has a UTC offset while the file's first .* none"),
    ("2023-11-16 18:15:47.0,1\n", r"line 3 of .*does not have the header's 3 fields"),
    ("\n\n2023-11-16 18:15:47.0,x,1\n", r"line 5 of .*ContextTokens is 'x'"),  # blank lines counted
])
@pytest.mark.parametrize("block", [64, 1 << 20])
def test_bad_values_name_the_line(tmp_path, body, pattern, block):
    f = write(tmp_path, "bad.csv", HEADER + GOOD + body + GOOD.replace("46.68", "59.68"))
    with pytest.raises(TraceFormatError, match=pattern) as e:
        read_azure_csv(f, block_size=block)
    assert str(f) in str(e.value)


def test_naive_row_in_2024_file(tmp_path):
    f = write(tmp_path, "mix.csv", HEADER + "2024-05-10 00:00:00.1+00:00,1,1\n2024-05-10 00:00:00.2,1,1\n")
    with pytest.raises(TraceFormatError, match=r"line 3 .*has no UTC offset"):
        read_azure_csv(f)


def test_missing_empty_and_headerless(tmp_path):
    with pytest.raises(TraceFormatError, match=r"nope\.csv' does not exist.*workload\.path"):
        load_workload(trace_cfg(tmp_path / "nope.csv"), 0)
    with pytest.raises(TraceFormatError, match=r"is empty \(0 bytes\)"):
        read_azure_csv(write(tmp_path, "empty.csv", ""))
    with pytest.raises(TraceFormatError, match="header but no data rows"):
        read_azure_csv(write(tmp_path, "h.csv", HEADER))
    with pytest.raises(TraceFormatError, match="not a file"):
        read_azure_csv(tmp_path)


def test_missing_column_is_named(tmp_path):
    f = write(tmp_path, "c.csv", "TIMESTAMP,ContextTokens,Generated\n" + GOOD)
    with pytest.raises(TraceFormatError, match=r"no column 'GeneratedTokens'.*'TIMESTAMP', 'ContextTokens', "
                                               r"'Generated'"):
        read_azure_csv(f)


def test_unsorted_file_is_sorted_stably_and_noted(tmp_path, caplog):
    f = write(tmp_path, "u.csv", HEADER + "2023-11-16 18:00:05.0,5,1\n"
              "2023-11-16 18:00:07.0,7,1\n"
              "2023-11-16 18:00:03.0,3,1\n"       # goes back: line 4, and is the earliest
              "2023-11-16 18:00:07.0,8,1\n"
              "2023-11-16 18:00:06.0,6,1\n")
    with caplog.at_level(logging.WARNING, logger="balanceroute.workloads"):
        for block in (48, 1 << 20):
            r = read_azure_csv(f, block_size=block)
            assert r.prompt.tolist() == [3, 5, 6, 7, 8]  # 7 before 8: equal times keep file order
            np.testing.assert_allclose(r.t_s, [0, 2, 3, 4, 4])
            assert r.meta["sorted_by_loader"] is True and r.meta["first_unsorted_line"] == 4
    assert "not sorted" in caplog.text or "back in time" in caplog.text
    # window and cap count on the sorted times
    r = read_azure_csv(f, Window(2.5, 10, cap=2))
    assert r.prompt.tolist() == [6, 7]
    # unsorted beyond the point where reading stops is not seen (documented)
    r = read_azure_csv(f, Window(0, 1.5))
    assert r.prompt.tolist() == [5] and r.meta["sorted_by_loader"] is False


def test_errors_are_user_errors():
    assert issubclass(TraceFormatError, UserError) and issubclass(ConfigError, UserError)
