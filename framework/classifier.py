"""Termination-classifier interface used by BR-H, lp and bfio (DESIGN.md section 5).

A classifier gives q_i(h) = P(request i still runs h steps ahead | what is observable), for h = 0..H.
Row order follows the view: running requests as in ``view.running_ids``, candidates as passed in.
For a running request that has produced d tokens (so o_i > d), q(h) = P(o > d + h | o > d); for a
candidate admitted now (d = 0), q(h) = P(o > h). q(0) = 1 always.

Concrete classifiers live in algorithms/classifiers.py and register with ``@register_classifier``.
Only classes with ``is_oracle = True`` may call ``context.request_oracle(self)``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Dict, NamedTuple

import numpy as np

from framework.policy import PolicyContext, load_all
from framework.errors import ConfigError
from framework.registry import Registry
from framework.view import ClusterView


class Survival(NamedTuple):
    running: np.ndarray  # (R, H+1) for view.running_ids
    candidates: np.ndarray  # (N, H+1) for the candidate ids passed in


class TerminationClassifier(ABC):
    """Predicts survival of running requests and of candidates over a horizon.

    Must implement ``survival(view, horizon, candidate_ids) -> Survival``.
    """

    name: ClassVar[str] = ""
    is_oracle: ClassVar[bool] = False

    def __init__(self, context: PolicyContext, **params: Any) -> None:
        self.context = context

    @abstractmethod
    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        """q arrays of shape (R, horizon+1) and (N, horizon+1) with q[:, 0] == 1."""

    def expected_lifetime(self, view: ClusterView, horizon: int) -> np.ndarray:
        """c_i = E[min(r_i, H+1)] = sum_h q_i(h) for the running requests (BR-H's paper form).

        Subclasses with a cheaper closed form (the empirical tables: prefix sums) override it.
        """
        return self.survival(view, horizon, np.empty(0, np.int64)).running.sum(axis=1)


CLASSIFIERS: Registry[type[TerminationClassifier]] = Registry(
    "classifier", "Set it with policy.classifier=NAME.", discover=load_all)


def register_classifier(name: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        cls.name = name
        return CLASSIFIERS.register(name, cls)

    return deco


def available_classifiers() -> list[str]:
    return CLASSIFIERS.names()


def make_classifier(name: str, context: PolicyContext, **params: Any) -> TerminationClassifier:
    return CLASSIFIERS.get(name)(context, **params)


# options of the built-in classifiers that policy configs carry as first-class fields
_BUILTIN_PARAMS = {"empirical": ("prompt_bins", "min_support"), "survival": ("prompt_bins", "min_support"),
                   "exact_match": ("match_support", "min_support"), "flip_oracle": ("accuracy",),
                   "noisy_oracle": ("noise_low", "noise_high")}


@dataclass
class ClassifierOptions:
    """Config fields of every policy that uses a termination classifier (brh, lp, bfio)."""

    classifier: str = field(default="survival", metadata={
        "help": "termination classifier: none | survival (= empirical) | exact_match | noisy_oracle | "
                "flip_oracle | oracle"})
    accuracy: float = field(default=0.9, metadata={"help": "flip_oracle: P(each answer is right)"})
    match_support: int = field(default=3, metadata={
        "help": "exact_match: training requests a prompt needs for its own distribution (else survival)"})
    noise_low: float = field(default=0.2, metadata={"help": "noisy_oracle: dl in o * U[1 - dl, 1 + du]"})
    noise_high: float = field(default=0.2, metadata={"help": "noisy_oracle: du in o * U[1 - dl, 1 + du]"})
    prompt_bins: int = field(default=1, metadata={"help": "empirical: equal-count prompt-length bins"})
    min_support: int = field(default=20, metadata={"help": "empirical: min training requests per estimate"})
    classifier_params: Dict[str, Any] = field(default_factory=dict, metadata={
        "help": "extra keyword options for a classifier registered elsewhere"})


def classifier_from_options(opts: ClassifierOptions, context: PolicyContext) -> TerminationClassifier:
    """Build the classifier a policy config names, passing only the options that classifier takes."""
    takes = _BUILTIN_PARAMS.get(opts.classifier, ())
    defaults = type(opts)()  # the policy config's own defaults (a subclass may change them)
    ignored = sorted({k for ks in _BUILTIN_PARAMS.values() for k in ks} - set(takes))
    ignored = [k for k in ignored if getattr(opts, k) != getattr(defaults, k)]
    if ignored:  # an option the chosen classifier never reads would silently change nothing
        raise ConfigError(f"policy.{ignored[0]}={getattr(opts, ignored[0])} has no effect with "
                          f"policy.classifier={opts.classifier} (it takes: {', '.join(takes) or 'no options'}). "
                          "Drop it or choose the classifier it belongs to.")
    params = {k: getattr(opts, k) for k in takes}
    params.update(dict(opts.classifier_params or {}))
    return make_classifier(opts.classifier, context, **params)
