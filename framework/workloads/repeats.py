"""Synthetic repeated prompts (``workload.repeat_share``): a stand-in for traces with prompt hashes.

The shared traces carry no prompt hash, so the ExactMatch predictor has nothing to match on them. This
draws a workload where a share of the requests repeat one of a few "template" prompts (a multi-turn or
templated share of traffic): each template is a (prompt, output) row of the source; a repeating request
takes its template's prompt and key, and an output o_t * U[1 - e, 1 + e] (e = repeat_output_spread; 0:
the template's output exactly, the best case for ExactMatch). The other requests keep their rows and
get a key of their own. This is SYNTHETIC: results on it say what ExactMatch can gain when prompts
repeat this way, not what it gains on any real trace; say so wherever they are reported.
"""
from __future__ import annotations

import numpy as np

from framework.workloads.keys import keys_of_strings


def repeat_prompts(prompt: np.ndarray, output: np.ndarray, share: float, templates: int, spread: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(prompt, output, key) with a ``share`` of requests repeating one of ``templates`` prompts."""
    n = len(prompt)
    p, o = np.asarray(prompt, np.int64).copy(), np.asarray(output, np.int64).copy()
    tpl = rng.choice(n, size=min(int(templates), n), replace=False)  # template rows of the sample
    rep = rng.random(n) < share
    which = rng.integers(0, len(tpl), n)
    p[rep] = p[tpl[which[rep]]]
    base = o[tpl[which[rep]]]
    factor = rng.uniform(1.0 - spread, 1.0 + spread, int(rep.sum())) if spread > 0 else 1.0
    o[rep] = np.maximum(np.rint(base * factor), 1).astype(np.int64)
    which[tpl[~rep[tpl]]] = np.flatnonzero(~rep[tpl])  # a template's own row has the template's prompt
    rep[tpl] = True
    names = np.where(rep, np.char.add("template:", which.astype(str)),
                     np.char.add("request:", np.arange(n).astype(str)))
    return p, o, keys_of_strings(names.astype(object))
