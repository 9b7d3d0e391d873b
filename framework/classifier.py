"""Termination-classifier interface used by BR-H, lp and bfio (DESIGN.md section 5).

A classifier gives q_i(h) = P(request i still runs h steps ahead | what is observable), for h = 0..H.
Row order follows the view: running requests as in ``view.running_ids``, candidates as passed in.
For a running request that has produced d tokens (so o_i > d), q(h) = P(o > d + h | o > d); for a
candidate admitted now (d = 0), q(h) = P(o > h). q(0) = 1 always.

Each classifier is one entry of one registry (framework.registry) with its own dataclass config and
``validate()``: ``@register_classifier("name", config=Cfg)`` on the class. Concrete classifiers live in
algorithms/classifiers.py and algorithms/predictors.py. Policies (brh, lp, bfio) carry the built-in
classifiers' options as flat fields (``policy.noise_low``, ...; ClassifierOptions); each flat field is
handed to the chosen classifier's config, and one it does not have is an error naming it.
Only classes with ``is_oracle = True`` may call ``context.request_oracle(self)``. A classifier that
learns from completed requests defines ``observe(request_ids, workers, output_tokens)``; the policy
forwards its on_complete hook to it (``attach_learning``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, fields
from typing import Any, Callable, ClassVar, Dict, NamedTuple, Optional

import numpy as np

from framework.errors import ConfigError
from framework.policy import PolicyContext, load_all
from framework.registry import Checks, Registry
from framework.view import ClusterView


@dataclass
class ClassifierConfig(Checks):
    """Base of every classifier's options (none here); subclasses add fields and ``validate()``."""

    check_prefix: ClassVar[str] = "policy"
    owner: ClassVar[str] = ""

    def check_owner(self) -> str:
        return f"classifier {self.owner}" if self.owner else ""

    def validate(self) -> None:
        """Raise ConfigError naming the first invalid option (none here)."""


class Survival(NamedTuple):
    running: np.ndarray  # (R, H+1) for view.running_ids
    candidates: np.ndarray  # (N, H+1) for the candidate ids passed in


class TerminationClassifier(ABC):
    """Predicts survival of running requests and of candidates over a horizon.

    Must implement ``survival(view, horizon, candidate_ids) -> Survival``.
    """

    name: ClassVar[str] = ""
    is_oracle: ClassVar[bool] = False

    def __init__(self, context: PolicyContext, config: ClassifierConfig | None = None) -> None:
        self.context = context
        self.config = config

    @abstractmethod
    def survival(self, view: ClusterView, horizon: int, candidate_ids: np.ndarray) -> Survival:
        """q arrays of shape (R, horizon+1) and (N, horizon+1) with q[:, 0] == 1."""

    def expected_lifetime(self, view: ClusterView, horizon: int) -> np.ndarray:
        """c_i = E[min(r_i, H+1)] = sum_h q_i(h) for the running requests (BR-H's paper form).

        Subclasses with a cheaper closed form (the empirical tables: prefix sums) override it.
        """
        return self.survival(view, horizon, np.empty(0, np.int64)).running.sum(axis=1)


CLASSIFIERS: Registry[type[TerminationClassifier]] = Registry(
    "classifier", "Set it with policy.classifier=NAME.", discover=load_all, key="policy.classifier")


def register_classifier(name: str, config: type[ClassifierConfig] = ClassifierConfig) -> Callable[[type], type]:
    """Class decorator: register a classifier under ``name`` with its options dataclass ``config``."""
    def deco(cls: type) -> type:
        cls.name = name
        if config is not ClassifierConfig and not config.owner:
            config.owner = name
        return CLASSIFIERS.register(name, cls, config)

    return deco


def available_classifiers() -> list[str]:
    return CLASSIFIERS.names()


def classifier_config(name: str, **params: Any) -> ClassifierConfig:
    """The validated options of classifier ``name`` (an unknown option: ConfigError with did-you-mean)."""
    return CLASSIFIERS.make_config(name, params, prefix="policy")


def make_classifier(name: str, context: PolicyContext, **params: Any) -> TerminationClassifier:
    """Build classifier ``name`` with these options (checked by its config before anything is built)."""
    return CLASSIFIERS.get(name)(context, classifier_config(name, **params))


def option_help(key: str) -> str:
    return {"accuracy": "flip_oracle: P(each answer is right) (default 0.9)",
            "match_support": "exact_match: observations a prompt key needs for its own distribution, "
                             "else survival (default 1: any seen key)",
            "noise_low": "noisy_oracle: dl in o * U[1 - dl, 1 + du] (default 0.2)",
            "noise_high": "noisy_oracle: du in o * U[1 - dl, 1 + du] (default 0.2)",
            "prompt_bins": "survival/empirical: equal-count prompt-length bins (default 1)",
            "min_support": "survival/empirical/exact_match: min training requests per estimate (default 20)"}[key]


@dataclass
class ClassifierOptions:
    """Config fields of every policy that uses a termination classifier (brh, lp, bfio).

    The flat option fields default to null, meaning "the classifier's own default"; a value set for a
    classifier that has no such option is an error (``check_classifier_options``).
    """

    classifier: str = field(default="survival", metadata={
        "help": "termination classifier: none | survival (= empirical) | exact_match | noisy_oracle | "
                "flip_oracle | oracle"})
    accuracy: Optional[float] = field(default=None, metadata={"help": option_help("accuracy")})
    match_support: Optional[int] = field(default=None, metadata={"help": option_help("match_support")})
    noise_low: Optional[float] = field(default=None, metadata={"help": option_help("noise_low")})
    noise_high: Optional[float] = field(default=None, metadata={"help": option_help("noise_high")})
    prompt_bins: Optional[int] = field(default=None, metadata={"help": option_help("prompt_bins")})
    min_support: Optional[int] = field(default=None, metadata={"help": option_help("min_support")})
    classifier_params: Dict[str, Any] = field(default_factory=dict, metadata={
        "help": "options of a classifier registered elsewhere (or a list-valued prompt_bins)"})


FLAT_OPTIONS = ("accuracy", "match_support", "noise_low", "noise_high", "prompt_bins", "min_support")


def classifier_params(opts: ClassifierOptions) -> dict[str, Any]:
    """The options ``opts`` sets for its classifier; a flat one the classifier lacks is an error."""
    entry = CLASSIFIERS.entry(opts.classifier)
    takes = [f.name for f in fields(entry.config)] if entry.config is not None else []
    params: dict[str, Any] = {}
    for key in FLAT_OPTIONS:
        value = getattr(opts, key)
        if value is None:
            continue
        if key not in takes:  # an option the chosen classifier never reads would silently change nothing
            raise ConfigError(f"policy.{key}={value} has no effect with policy.classifier={opts.classifier} "
                              f"(it takes: {', '.join(takes) or 'no options'}). Drop it or choose the "
                              "classifier it belongs to.")
        params[key] = value
    params.update(dict(opts.classifier_params or {}))
    return params


def check_classifier_options(opts: ClassifierOptions) -> None:
    """Validate the classifier name and its options at config time (policy configs' validate())."""
    classifier_config(opts.classifier, **classifier_params(opts))


def classifier_from_options(opts: ClassifierOptions, context: PolicyContext) -> TerminationClassifier:
    """Build the classifier a policy config names, with only the options it takes."""
    return make_classifier(opts.classifier, context, **classifier_params(opts))


def attach_learning(policy: Any, classifier: TerminationClassifier | None) -> None:
    """Forward the policy's completion hook to a classifier that learns from completed requests.

    Set per instance, so a policy whose classifier does not learn defines no hook and costs nothing.
    """
    observe = getattr(classifier, "observe", None)
    if callable(observe):
        policy.on_complete = observe
