"""Hindsight optimum of the imbalance objective J (analysis.objective): exact MILP or certified interval.

Modules: ``decompose`` (independent busy parts), ``kernels`` (numba: bounds per step, greedy, annealing),
``search`` (the incumbent), ``bounds`` (window lower bounds), ``milp`` (the segment MILP with refinement),
``solve`` (the time budget over parts: ``solve_offline``), ``cli`` (``python -m analysis.offline``; the
old ``python -m analysis.offline_optimum`` still works).

Every o_i and every start step a_i are known; choose one worker per request to minimise
J = sum_k (G * M_k - S_k), M_k = max_g s_g(k). S_k does not depend on the assignment, so this is
minimising E = sum_k M_k; J = G * E - sum_k S_k.

Formulation (PuLP, solved by HiGHS through pulp's HiGHS interface)
------------------------------------------------------------------
x_ig in {0, 1}, sum_g x_ig = 1. Variables W_j >= 0 per *segment*.

Segments. Cut the step axis at every a_i and a_i + o_i: inside a segment [u, v) the active set A is
constant and each active load is (p_i - a_i) + k, so s_g(k) = c_g + n_g k is affine in k.
  (a) sum_{k=u}^{v-1} s_g(k) = sum_{i in A} x_ig * Lam_i with Lam_i = L (p_i - a_i) + L (u + v - 1) / 2,
      L = v - u: the segment's contribution is linear in x in closed form.
  (b) max_g s_g(k) is a maximum of affine functions, hence convex in k. Its maximum over the segment is
      at an endpoint, but that is not what E needs: E needs its *sum*. Keeping M only at the two
      endpoints and charging the trapezoid L (M_u + M_{v-1}) / 2 charges the chord of a convex function,
      which lies *above* it: an over-estimate whenever the arg-max worker changes inside the segment
      (e.g. G = 2, steps 0..6, worker 0 holds prompts 3 and 4, load 7 + 2k, worker 1 prompt 10, load
      10 + k: the maxima 10, 11, 12, 13, 15, 17, 19 sum to 97, the trapezoid charges 7 (10 + 19) / 2 =
      101.5). So the endpoint form is not exact; we use
        W_j >= sum_i Lam_i x_ig   for every g                                           (1)
      i.e. W_j >= max_g sum_k s_g(k), a *lower* bound on sum_k max_g s_g(k) (the sum of a maximum
      is at least the maximum of the sums; 91 in the example), with equality iff one worker is the
      maximum on every step of the segment.
  (c) Exactness by refinement: solve; for the solution x*, evaluate sum_k max_g s_g(k) per segment;
      if some segment's arg-max changes, split it at the steps where it changes (each piece then has
      one arg-max under x*, so (1) is exact for x* there) and solve again, warm-started. The model
      with finer segments is still a relaxation of E, so every solver bound is a valid bound on E*,
      and when the relaxed optimum x* has relaxed value = E(x*), x* is optimal. Steps only split,
      so this terminates (at worst one segment per step, where (1) is the plain per-step model).
  Rows are scaled by 1/L (W_j is the mean envelope over the segment, objective coefficient L):
  same model, better conditioned; E is integer at integral points, so the solver stops at an
  absolute gap below 1 in E.

Per-step lower bounds (constant, valid for any assignment; offline.kernels.step_bounds):
max_g s_g(k) >= ceil(S_k / G), >= the largest active load, >= l_(G) + l_(G+1) (two of the G + 1
largest share a worker) and in general >= the j + 1 smallest of the j*G + 1 largest loads. Summed over a
segment they give W_j >= C_j / L (a variable bound), and summed over all steps a bound on E that needs
no solver (the bound used alone on instances too large for the MILP).

Symmetry breaking. Workers are identical, so any assignment can be relabelled by order of first use
along a fixed request order (largest total load first): request number r in that order may only use
workers 0..r. (The stronger orbitopal rows x_ig <= sum_{r' < r} x_{r', g-1} made HiGHS slower here.)

Decomposition. At a step where at most one request is active, the steps before and after interact only
through that request. Worker labels of each side can be permuted independently, so the two sides are
independent problems: we cut at every such step, solve each busy part alone (its boundary request
truncated to the part's steps), add the cut steps' constant imbalance (G - 1) l_r(k), and relabel the
parts so each shared request keeps one worker. A part with at most G requests is solved exactly by
putting them on distinct workers (then M_k is the largest load, which is the per-step bound).

Window bounds (offline.bounds). Stickiness is what the LP relaxation (x fractional, every
worker at the mean) cannot see. Short windows of steps with the requests that start or end inside kept
integral and the rest relaxed to a divisible fluid give proven bounds on the envelope summed over the
window; they become rows sum_{segments in window} L_j W_j >= bound of the MILP, and on instances too
large for the MILP they are combined by an LP into the lower bound.

Incumbent. Largest-first greedy, then simulated annealing over moves and swaps (offline.search, on offline.kernels), then
best-improvement moves; it warm-starts the MILP and is the upper bound when the MILP is too large.

Result: objective = J of the best assignment found; lower_bound = a proven bound on J*; status
"optimal" when they meet, else "time_limit". Tolerances: HiGHS runs with relative gap 0 and absolute gap
0.5 in E (E* is an integer); its dual bound is rounded up to an integer only after a 1e-6 relative
allowance for floating-point error, so the reported bound errs low, never high.
"""
