"""The BF-IO placement model shared by the ``lp`` and ``bfio`` routers (DESIGN.md section 5).

Modules: ``problem`` (one step's data, the loads and limits of a placement), ``model`` (the sparse
LP/MILP), ``highs`` (the HiGHS driver, with the one workaround for a HiGHS 1.16 MIP-start defect),
``rounding`` (greedy and rounded placements that never break a limit).

One decision step, for the N candidates (oldest waiting requests) and the G workers:

    minimise  sum_h gamma^h (G*M_h - S_h)  +  rho*u
    s.t.      M_h >= s_g(h) + sum_i a_ih x_ig        for every worker g, h = 0..H   (envelope)
              sum_g x_ig <= 1                         for every request i
              sum_i x_ig <= free_slots_g,  sum_i p_i x_ig <= free_kv_g
              sum_ig x_ig + u = K,  0 <= u <= K - K_lb                              (work conservation)
              x_ig in [0, 1] (lp) or {0, 1} (bfio)

with s_g(h) = sum over running r on g of q_r(h)(l_r + h) + tokens committed to g (prefill, local
queue; as BR-0/BR-H count them), a_ih = q_i(h)(p_i + h) the load request i adds h steps after
admission, S_h = sum_g s_g(h) + sum_ig a_ih x_ig, q from the termination classifier. G*M_h - S_h is the
predicted imbalance h steps ahead, so with H = 0 the objective is the imbalance right after the step.

Work conservation. A pool policy admits K = min(N, total free slots) requests when they fit. When KV room
binds, fewer may fit, and the largest count that does is a bin-packing question. So the model carries a
slack u (requests left out below K) priced at rho, an upper bound on the imbalance term over all
placements: the optimum admits as many requests as can fit and, among those, minimises the predicted
imbalance. A count-greedy packing (smallest prompts first) gives K_lb that surely fits, which bounds
u <= K - K_lb, so the model is always feasible; when KV does not bind (K_lb = K, the usual case) u is
fixed at 0 and rho never enters the numerics.

Sparse form. Each x_ig column has one entry in its request row and one in each of worker g's aggregate
definitions P_g = sum_i p_i x_ig and n_g = sum_i x_ig (bounded by free KV and free slots) and, only when
the candidates' survival curves differ, z_gk = sum_i W_ik x_ig for a low-rank factor W V of the part of
a_ih that p_i and 1 do not span. The envelope rows read M_h - alpha_h P_g - beta_h n_g - sum_k V_kh z_gk
>= s_g(h): a few entries each instead of N. With a candidate survival curve shared by all candidates
(classifier none, or empirical without prompt bins) z is empty and the matrix has 3*N*G + O(G*H)
entries. Blocks are built as numpy arrays, never element by element.

Solving the LP fast (``HighsSolver.solve_lp``): column generation started from the vertex of a greedy
placement, with large batches of the columns that price out negative, exact at termination (no column
prices below -tol); it needs far fewer simplex iterations than a solve of the full model from scratch
(figures: docs/lp.md).

Certificate. sum_h gamma^h max(0, G*max_g s_g(h) - sum_g s_g(h) - T_h), with T_h the sum of the K largest
a_ih, is a lower bound on the LP (hence on the MILP). When the greedy placement attains it, the greedy is
optimal for both and no solver runs (the common case when the cluster has room).
"""
