"""The policy checker over every registered policy, and that it catches each rule being broken."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from framework.check_policy import PolicyCheckError, check_policy, main
from framework.policy import POOL, Policy, available_policies, get_policy_class, scoped_policy
from framework.view import Placements
from tests._policies import BadOverfill, PoolFirstFit

# bfio's MILP stops at a wall-clock limit, which no seed controls: give it room to finish
CONFIGS = {"bfio": {"name": "bfio", "time_limit_s": 30.0}}


@pytest.mark.parametrize("policy", available_policies())
def test_every_registered_policy_passes_the_checker(policy):
    assert check_policy(policy, CONFIGS.get(policy), cases=3) > 0


POOL_FORMS = [p for p in available_policies()
              if "mode" in {f.name for f in dataclasses.fields(get_policy_class(p).config_class)}]


@pytest.mark.parametrize("policy", POOL_FORMS)
def test_pool_forms_pass_the_checker(policy):
    assert check_policy(policy, {"name": policy, "mode": "pool"}, cases=3) > 0


def test_checker_accepts_a_correct_test_policy():
    with scoped_policy("_check_first_fit", PoolFirstFit):
        assert check_policy("_check_first_fit", cases=2) > 0


def test_checker_reports_an_invalid_placement():
    with scoped_policy("_check_overfill", BadOverfill), pytest.raises(PolicyCheckError, match="PlacementError"):
        check_policy("_check_overfill", cases=3)


class Unseeded(Policy):
    """Places each waiting request on a random worker with room, from a generator no seed controls."""

    family = POOL

    def decide(self, view):
        rng = np.random.default_rng()
        slots, kv = view.free_slots.copy(), view.free_kv.copy()
        req, wrk = [], []
        for r, p in zip(view.waiting_ids.tolist(), view.waiting_prompt.tolist()):
            ok = np.flatnonzero((slots > 0) & (kv >= p))
            if len(ok):
                g = int(rng.choice(ok))
                slots[g] -= 1
                kv[g] -= p
                req.append(r)
                wrk.append(g)
        return Placements.of(req, wrk)


def test_checker_reports_nondeterminism():
    with scoped_policy("_check_unseeded", Unseeded), pytest.raises(PolicyCheckError, match="not deterministic"):
        check_policy("_check_unseeded", cases=6)


class Peeks(PoolFirstFit):
    """Reads true output lengths straight from the context, bypassing request_oracle."""

    def decide(self, view):
        self.context.oracle_channel.output_tokens(view.waiting_ids)
        return super().decide(view)


class AsksOracle(PoolFirstFit):
    """Asks for the oracle the proper way (so the run would say oracle_used)."""

    is_oracle = True

    def decide(self, view):
        self.context.request_oracle(self)
        return super().decide(view)


def test_checker_reports_ground_truth_reads_outside_the_oracle_channel():
    with scoped_policy("_check_peeks", Peeks), pytest.raises(PolicyCheckError, match="without"):
        check_policy("_check_peeks", cases=1)


def test_checker_allows_the_oracle_only_when_flagged():
    with scoped_policy("_check_oracle", AsksOracle):
        assert check_policy("_check_oracle", cases=1) > 0  # is_oracle: flagged by its class
        with pytest.raises(PolicyCheckError, match="not flagged"):
            check_policy("_check_oracle", cases=1, oracle=False)


def test_scoped_test_policies_leave_no_trace():
    with scoped_policy("_check_tmp", PoolFirstFit):
        assert "_check_tmp" in available_policies()
    assert "_check_tmp" not in available_policies()
    assert not [p for p in available_policies() if p.startswith("_")]


def test_cli(capsys):
    assert main(["round_robin", "--cases", "1"]) == 0
    assert "ok      round_robin" in capsys.readouterr().out


def test_cli_fails_on_an_unknown_name(capsys):
    assert main(["round_robbin", "--cases", "1"]) == 1
    assert "did you mean 'round_robin'" in capsys.readouterr().out.lower()
