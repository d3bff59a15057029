"""Dense quasi-Newton optax transforms (BFGS, SSBFGS, SSBroyden), each checked against an independent truth.

Truths: a quadratic with a minimiser known by construction; the secant condition H_{k+1} y = s evaluated in NumPy;
BFGS written in NumPy in Nocedal & Wright's product form (eq. 6.17) and the Broyden family as the phi-combination of
the NumPy BFGS and DFP updates; b_k = s^T B s / y^T s with B = inv(H) from NumPy (the module uses a step-length free
identity instead); Rosenbrock's minimiser (1, 1); separate runs for vmap.

float64 checks run inside ``with jax.enable_x64(True):`` so that the global flag is left alone.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from pinnkit import quasi_newton as qn

N = 20
METHODS = ("bfgs", "ssbfgs", "ssbroyden")
CONSTRUCTORS = {"bfgs": qn.bfgs, "ssbfgs": qn.ssbfgs, "ssbroyden": qn.ssbroyden}


# ----------------------------------------------------------------------------------------------------------
# Helpers


def _quadratic_problem(lo: float = 0.0, hi: float = 4.0, n: int = N, seed: int = 0):
    """A with eigenvalues log-spaced over [10^lo, 10^hi] and x*: f(x) = (x - x*)^T A (x - x*) / 2 has minimiser x*."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = q @ np.diag(np.logspace(lo, hi, n)) @ q.T
    a = (a + a.T) / 2
    x_star = rng.standard_normal(n)
    return a, x_star


def _quadratic(a, x_star):
    def f(x):
        d = x - x_star
        return 0.5 * d @ a @ d

    return f


def _rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


def _make_step(opt, f):
    value_and_grad = optax.value_and_grad_from_state(f)

    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
        return optax.apply_updates(params, updates), state, grad

    return step


@functools.cache
def _jit_step(method: str, f):
    """One compiled optimizer step per (method, problem), shared between tests (compilation dominates the runtime)."""
    opt = CONSTRUCTORS[method]()
    return opt, jax.jit(_make_step(opt, f))


def _np_bfgs(h, s, y):
    """Nocedal & Wright eq. 6.17, product form."""
    rho = 1.0 / (y @ s)
    v = np.eye(len(s)) - rho * np.outer(y, s)
    return v.T @ h @ v + rho * np.outer(s, s)


def _np_dfp(h, s, y):
    hy = h @ y
    return h - np.outer(hy, hy) / (y @ hy) + np.outer(s, s) / (y @ s)


def _np_family(h, s, y, tau, phi):
    """Self-scaled Broyden family: phi-combination of BFGS and DFP applied to H, the s s^T / y^T s term unscaled."""
    sst = np.outer(s, s) / (y @ s)
    inner = phi * (_np_bfgs(h, s, y) - sst) + (1.0 - phi) * (_np_dfp(h, s, y) - sst)
    return inner / tau + sst


def _np_ssbroyden_scalars(a, b, h, n):
    """Al-Baali & Khalfan / Urbán et al. (eqs. 13-23) theta, tau, phi, transcribed independently."""
    c = np.sqrt(a / (1 + a))
    rho_minus = min(1.0, h * (1 - c))
    theta = max((rho_minus - 1) / a, min(1 / rho_minus, (1 - b) / b))
    sigma = 1 + a * theta
    sigma_n = abs(sigma) ** (1 / (1 - n))
    rho = min(1.0, 1 / b)
    tau = min(rho * sigma_n, sigma) if theta <= 0 else rho * min(sigma_n, 1 / theta)
    return tau, (1 - theta) / sigma


@functools.cache
def _quadratic_step(method: str):
    """One compiled step for every quadratic: A and x* are arguments, not constants baked into the program."""
    opt = CONSTRUCTORS[method]()

    def step(params, state, a, x_star):
        return _make_step(opt, _quadratic(a, x_star))(params, state)

    return opt, jax.jit(step)


@functools.cache
def _quadratic_run(method: str, lo: float = 0.0, hi: float = 4.0, steps: int = 3 * N):
    """Iterates x_k, the gradients g_k handed to ``update``, and the QN states (``qstates[k + 1]`` after call k)."""
    a, x_star = _quadratic_problem(lo, hi)
    with jax.enable_x64(True):
        opt, step = _quadratic_step(method)
        a_j, x_star_j = jnp.asarray(a), jnp.asarray(x_star)
        params = jnp.zeros(N)
        state = opt.init(params)
        xs, gs, qstates = [], [], [jax.tree.map(np.asarray, state[0])]
        for _ in range(steps):
            xs.append(np.asarray(params))
            params, state, grad = step(params, state, a_j, x_star_j)
            gs.append(np.asarray(grad))
            qstates.append(jax.tree.map(np.asarray, state[0]))
    return x_star, xs, gs, qstates


# ----------------------------------------------------------------------------------------------------------
# Convergence and the secant condition


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.slow
def test_quadratic_reaches_known_minimiser_within_3n(method):
    x_star, xs, _, qstates = _quadratic_run(method)
    errors = [np.max(np.abs(x - x_star)) for x in xs[1:]]  # xs[k + 1] = params after k + 1 iterations
    reached = [k + 1 for k, e in enumerate(errors) if e <= 1e-10]
    assert reached, f"{method}: best error {min(errors):.2e} after {len(errors)} iterations"
    assert reached[0] <= 3 * N
    assert qstates[-1].inverse_hessian.dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_secant_condition_after_every_accepted_update(method):
    _, xs, gs, qstates = _quadratic_run(method)
    checked = 0
    for k in range(1, len(xs)):
        before, after = qstates[k], qstates[k + 1]
        if after.num_updates != before.num_updates + 1:
            continue
        s, y = xs[k] - xs[k - 1], gs[k] - gs[k - 1]
        h = after.inverse_hessian
        assert np.linalg.norm(h @ y - s) <= 1e-8 * np.linalg.norm(s), f"{method}: secant fails at step {k}"
        assert np.array_equal(h, h.T)  # assembled from symmetric outer products: exactly symmetric
        assert np.all(np.linalg.eigvalsh(h) > 0)
        checked += 1
    assert checked >= N


@pytest.mark.slow
def test_rosenbrock_converges_from_classic_start():
    with jax.enable_x64(True):
        x0 = jnp.array([-1.2, 1.0])
        for method in METHODS:
            opt, step = _jit_step(method, _rosenbrock)
            params, state = x0, opt.init(x0)
            for k in range(1, 101):
                params, state, _ = step(params, state)
                if np.max(np.abs(np.asarray(params) - 1.0)) <= 1e-8:
                    break
            assert np.max(np.abs(np.asarray(params) - 1.0)) <= 1e-8, f"{method}: {params} after {k} iterations"
            assert k <= 60, f"{method} needed {k} iterations"


# ----------------------------------------------------------------------------------------------------------
# The formulas against NumPy


def _replay(precond, xs, gs):
    """Feed a fixed sequence of (params, grad) to a preconditioner; return the states after each call."""
    update = jax.jit(precond.update)
    state = precond.init(jnp.asarray(xs[0]))
    states = []
    for x, g in zip(xs, gs, strict=True):
        _, state = update(jnp.asarray(g), state, jnp.asarray(x))
        states.append(jax.tree.map(np.asarray, state))
    return states


@pytest.mark.parametrize("initial_scale", [False, True])
def test_ssbroyden_with_tau_phi_one_is_bfgs(initial_scale):
    # A real trajectory with y^T s > 0 on every step: the quadratic run of BFGS, up to convergence.
    _, xs, gs, _ = _quadratic_run("bfgs")
    last = next(k for k, g in enumerate(gs) if np.linalg.norm(g) < 1e-6)
    xs, gs = xs[:last], gs[:last]
    with jax.enable_x64(True):
        forced = _replay(
            qn.scale_by_quasi_newton(method="ssbroyden", tau=1.0, phi=1.0, initial_scale=initial_scale), xs, gs
        )
        plain = _replay(qn.scale_by_quasi_newton(method="bfgs", initial_scale=initial_scale), xs, gs)
    h_ref = np.eye(N)
    for k in range(1, len(xs)):
        s, y = xs[k] - xs[k - 1], gs[k] - gs[k - 1]
        if initial_scale and k == 1:
            h_ref = (y @ s) / (y @ y) * h_ref  # Nocedal & Wright eq. 6.20
        h_ref = _np_bfgs(h_ref, s, y)
        scale = np.max(np.abs(h_ref))
        np.testing.assert_allclose(plain[k].inverse_hessian, h_ref, rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(forced[k].inverse_hessian, plain[k].inverse_hessian, rtol=0, atol=1e-12 * scale)
    assert int(forced[-1].num_updates) == len(xs) - 1 and int(forced[-1].num_skipped) == 0
    assert float(forced[-1].tau) == 1.0 and float(forced[-1].phi) == 1.0


@pytest.mark.parametrize("method", ["ssbfgs", "ssbroyden"])
def test_self_scaled_update_matches_the_papers(method):
    # Eigenvalues in [1e-3, 10]: H_0 = I is too small along most directions, so b_k > 1 and the scaling acts.
    _, xs, gs, qstates = _quadratic_run(method, -3.0, 1.0)
    checked = 0
    for k in range(1, len(xs)):
        if np.linalg.norm(gs[k]) < 1e-6:  # converged: the remaining pairs are rounding noise
            break
        before, after = qstates[k], qstates[k + 1]
        assert after.num_updates == before.num_updates + 1
        s, y = xs[k] - xs[k - 1], gs[k] - gs[k - 1]
        h = before.inverse_hessian
        ys = y @ s
        b = s @ np.linalg.solve(h, s) / ys  # s^T B s / y^T s with B = H^{-1}: no line-search identity involved
        hh = y @ h @ y / ys
        a = b * hh - 1
        if method == "ssbfgs":
            tau, phi = min(1.0, 1.0 / b), 1.0  # Al-Baali (1998), Urbán et al. eq. 11
        else:
            tau, phi = _np_ssbroyden_scalars(a, b, hh, N)
        np.testing.assert_allclose(after.tau, tau, rtol=1e-6)
        np.testing.assert_allclose(after.phi, phi, rtol=1e-6, atol=1e-9)
        h_ref = _np_family(h, s, y, tau, phi)
        np.testing.assert_allclose(after.inverse_hessian, h_ref, rtol=0, atol=1e-8 * np.max(np.abs(h_ref)))
        checked += 1
    assert checked >= N // 2
    taus = [float(q.tau) for q in qstates[2:]]
    assert min(taus) < 0.99  # the scaling is active
    if method == "ssbroyden":
        assert any(abs(float(q.phi) - 1.0) > 1e-3 for q in qstates)  # the Broyden parameter really moves


# ----------------------------------------------------------------------------------------------------------
# Safeguards, called on the preconditioner directly


def _first_call(precond, x0, g0):
    state = precond.init(x0)
    _, state = precond.update(g0, state, x0)
    return state


def test_negative_curvature_skips_update():
    precond = qn.scale_by_quasi_newton(method="ssbroyden")
    x0, g0 = jnp.array([0.0, 0.0, 0.0]), jnp.array([1.0, -2.0, 0.5])
    state = _first_call(precond, x0, g0)
    h0 = np.asarray(state.inverse_hessian)
    x1 = jnp.array([-0.1, 0.2, -0.05])
    g1 = g0 - 3.0 * (x1 - x0)  # y = -3 s: y^T s < 0
    x2, g2 = x1 + jnp.array([0.1, 0.0, 0.0]), g1 + jnp.array([0.0, 0.3, 0.0])  # y orthogonal to s: y^T s = 0
    for x, g in ((x1, g1), (x2, g2)):
        direction, state = precond.update(g, state, x)
        np.testing.assert_array_equal(np.asarray(state.inverse_hessian), h0)
        np.testing.assert_allclose(direction, h0 @ np.asarray(g))
    assert int(state.num_skipped) == 2 and int(state.num_updates) == 0
    _, state = precond.update(g2, state, x2)  # the same point again: no step, nothing to count
    assert int(state.num_skipped) == 2
    # A pair with positive curvature is used again.
    x3 = x2 - 0.1 * g0
    _, state = precond.update(g2 + 2.0 * (x3 - x2), state, x3)
    assert int(state.num_updates) == 1 and int(state.num_skipped) == 2


def test_nan_gradient_keeps_state_finite():
    precond = qn.scale_by_quasi_newton(method="ssbroyden")
    x0, g0 = jnp.array([1.0, 2.0]), jnp.array([2.0, 4.0])
    state = _first_call(precond, x0, g0)
    x1 = jnp.array([0.5, 1.0])
    _, state = precond.update(2.0 * x1, state, x1)  # a valid update
    h1 = np.asarray(state.inverse_hessian)
    for bad in (jnp.array([jnp.nan, 1.0]), jnp.array([jnp.inf, -jnp.inf])):
        x_bad = jnp.array([0.4, 0.9])
        _, state = precond.update(bad, state, x_bad)
        for leaf in jax.tree.leaves(state):
            assert np.all(np.isfinite(np.asarray(leaf, dtype=float)))
        np.testing.assert_array_equal(np.asarray(state.inverse_hessian), h1)
        assert not bool(state.has_prev)
    assert int(state.num_skipped) == 1  # the second NaN call has no finite previous point to pair with
    # Back to finite gradients: the first call re-anchors, the second updates.
    for x in (jnp.array([0.3, 0.6]), jnp.array([0.2, 0.3])):
        _, state = precond.update(2.0 * x, state, x)
    assert int(state.num_updates) == 2


def test_breakdown_resets_to_scaled_identity():
    precond = qn.scale_by_quasi_newton(method="bfgs")
    x0, g0 = jnp.array([1.0, 1.0]), jnp.array([1.0, 3.0])
    state = _first_call(precond, x0, g0)
    state = state._replace(inverse_hessian=-jnp.eye(2))  # corrupt: y^T H y < 0
    x1 = jnp.array([0.5, 0.5])
    g1 = jnp.array([0.5, 1.5])
    _, state = precond.update(g1, state, x1)
    s, y = np.asarray(x1 - x0), np.asarray(g1 - g0)
    np.testing.assert_allclose(state.inverse_hessian, (y @ s) / (y @ y) * np.eye(2), rtol=1e-6)
    assert int(state.num_resets) == 1 and int(state.num_updates) == 0


def test_reset_inverse_hessian_and_reset_every():
    opt = qn.ssbroyden()
    state = opt.init(jnp.zeros(3))
    reset = qn.reset_inverse_hessian(state)
    assert int(reset[0].num_resets) == 1 and int(reset[0].num_updates) == 0
    np.testing.assert_array_equal(reset[0].inverse_hessian, np.eye(3))
    stacked = jax.vmap(opt.init)(jnp.zeros((4, 3)))
    assert qn.reset_inverse_hessian(stacked)[0].inverse_hessian.shape == (4, 3, 3)
    with pytest.raises(ValueError, match="QuasiNewtonState"):
        qn.reset_inverse_hessian(optax.adam(1e-3).init(jnp.zeros(3)))

    precond = qn.scale_by_quasi_newton(method="bfgs", reset_every=3)
    state = precond.init(jnp.zeros(2))
    for k in range(7):
        x = jnp.array([1.0, 2.0]) / (k + 1)
        _, state = precond.update(jnp.array([1.0, 10.0]) * x, state, x)
    assert int(state.num_resets) == 2  # at calls 3 and 6
    assert int(state.num_updates) == 1  # the pair of call 6 was applied to the fresh identity


# ----------------------------------------------------------------------------------------------------------
# Arguments, dtypes, pytrees


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: qn.scale_by_quasi_newton(method="lbfgs"), "'lbfgs'"),
        (lambda: qn.scale_by_quasi_newton(max_parameters=0), "max_parameters.*0"),
        (lambda: qn.bfgs(max_parameters=-5), "-5"),
        (lambda: qn.ssbfgs(reset_every=0), "reset_every.*0"),
        (lambda: qn.ssbroyden(tau=0.0), "tau.*0.0"),
        (lambda: qn.ssbroyden(phi=float("nan")), "phi.*nan"),
        (lambda: qn.bfgs(curvature_eps=-1.0), "curvature_eps.*-1.0"),
        (lambda: qn.bfgs(learning_rate=-0.1), "learning_rate.*-0.1"),
        (lambda: qn.bfgs(max_linesearch_steps=0), "max_linesearch_steps.*0"),
        (lambda: qn.bfgs(linesearch="armijo"), "'armijo'"),
        (lambda: qn.bfgs(max_parameters=2.5), "2.5"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_value(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_too_many_parameters_raise_at_init():
    with pytest.raises(ValueError, match=r"30 entries.*max_parameters=20\b"):
        qn.ssbroyden(max_parameters=20).init({"w": jnp.zeros((5, 4)), "b": jnp.zeros(10)})
    with pytest.raises(ValueError, match=r"20001 entries.*max_parameters=20000"):
        qn.bfgs().init(jnp.zeros(20_001))
    precond = qn.scale_by_quasi_newton()
    with pytest.raises(ValueError, match="params"):
        precond.update(jnp.zeros(2), precond.init(jnp.zeros(2)))


@pytest.mark.slow
def test_pytree_params_and_dtypes():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    precond = qn.scale_by_quasi_newton(method="ssbfgs")
    state = precond.init(params)
    assert state.inverse_hessian.shape == (9, 9) and state.inverse_hessian.dtype == jnp.float32
    grads = jax.tree.map(lambda p: p + 1.0, params)
    direction, state = precond.update(grads, state, params)
    assert jax.tree.structure(direction) == jax.tree.structure(params)
    assert direction["w"].shape == (2, 3) and direction["w"].dtype == jnp.float32
    with jax.enable_x64(True):
        state64 = precond.init(jax.tree.map(lambda p: p.astype(jnp.float64), params))
        assert state64.inverse_hessian.dtype == jnp.float64 and state64.tau.dtype == jnp.float64


def test_float32_rosenbrock_stays_finite():
    opt, step = _jit_step("ssbroyden", _rosenbrock)  # compiled outside x64 here: float32 throughout
    params, state = jnp.array([-1.2, 1.0]), opt.init(jnp.array([-1.2, 1.0]))
    for _ in range(60):
        params, state, _ = step(params, state)
    assert np.max(np.abs(np.asarray(params) - 1.0)) < 1e-3
    assert all(np.all(np.isfinite(np.asarray(leaf, dtype=float))) for leaf in jax.tree.leaves(state[0]))


# ----------------------------------------------------------------------------------------------------------
# jit and vmap


def test_vmap_and_jit_agree_with_separate_runs():
    steps = 10
    with jax.enable_x64(True):
        opt, jit_step = _jit_step("ssbroyden", _rosenbrock)
        starts = jnp.array([[-1.2, 1.0], [0.0, 0.0], [2.0, -1.0]])
        vmap_step = jax.jit(jax.vmap(_make_step(opt, _rosenbrock)))
        params, state = starts, jax.vmap(opt.init)(starts)
        for _ in range(steps):
            params, state, _ = vmap_step(params, state)
        assert state[0].inverse_hessian.shape == (3, 2, 2)
        for i in range(3):
            p, s = starts[i], opt.init(starts[i])
            for _ in range(steps):
                p, s, _ = jit_step(p, s)
            # Batched and unbatched kernels round differently; the line search amplifies that a little.
            np.testing.assert_allclose(params[i], p, rtol=1e-6, atol=1e-9)
            np.testing.assert_allclose(state[0].inverse_hessian[i], s[0].inverse_hessian, rtol=1e-5, atol=1e-9)
            assert int(state[0].num_updates[i]) == int(s[0].num_updates)
            assert int(state[0].count[i]) == steps
