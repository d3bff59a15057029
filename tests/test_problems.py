import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pinnkit import problems


def as_model(function):
    """A 'network' that returns a closed-form field, for checking residual operators."""
    return lambda point: jnp.atleast_1d(function(point))


def test_registry_lists_the_problems_and_rejects_unknown_names():
    assert {"allen-cahn", "helmholtz", "burgers", "cavity"} <= set(problems.names())
    with pytest.raises(ValueError, match="unknown problem 'heat'"):
        problems.get("heat")
    with pytest.raises(ValueError, match="no parameter 'b7'"):
        problems.get("helmholtz", b7=1.0)


def test_helmholtz_exact_solution_has_zero_residual_and_matches_the_reference():
    problem = problems.get("helmholtz", a1=1.0, a2=4.0)
    points = problem.sample(jax.random.key(0), 256)
    exact = as_model(lambda p: problem.exact(p[0], p[1]))
    residuals = problem.residuals(exact, points)
    assert residuals["pde"].shape == (256,) and residuals["bc"].shape == (400,)
    scale = (4 * np.pi) ** 2
    assert float(jnp.max(jnp.abs(residuals["pde"]))) < 1e-4 * scale
    assert float(jnp.max(jnp.abs(residuals["bc"]))) < 1e-5
    assert float(problem.relative_l2_fn()(exact)) < 1e-5


def test_allen_cahn_residual_matches_a_hand_computed_field():
    problem = problems.get("allen-cahn")
    field = lambda p: jnp.sin(2.0 * p[0]) * jnp.cos(p[1])
    points = problem.sample(jax.random.key(1), 64)
    x, t = np.asarray(points["pde"][:, 0]), np.asarray(points["pde"][:, 1])
    u = np.sin(2 * x) * np.cos(t)
    expected = -np.sin(2 * x) * np.sin(t) + 1e-4 * 4 * u + 5 * (u**3 - u)
    got = problem.residuals(as_model(field), points)
    np.testing.assert_allclose(got["pde"], expected, rtol=1e-4, atol=1e-5)
    ic = np.asarray(points["ic"][:, 0])
    np.testing.assert_allclose(got["ic"], np.sin(2 * ic) - ic**2 * np.cos(np.pi * ic), atol=1e-5)


def test_allen_cahn_periodic_term_vanishes_for_a_periodic_field():
    problem = problems.get("allen-cahn", periodic_loss=True)
    points = problem.sample(jax.random.key(2), 32)
    got = problem.residuals(as_model(lambda p: jnp.cos(jnp.pi * p[0]) * (1 + p[1])), points)
    assert float(jnp.max(jnp.abs(got["bc"]))) < 1e-5


@pytest.mark.slow
def test_burgers_stationary_viscous_shock_has_zero_pde_residual():
    problem = problems.get("burgers", viscosity=0.05)
    points = problem.sample(jax.random.key(3), 128)
    shock = as_model(lambda p: -jnp.tanh(p[0] / (2 * 0.05)))
    got = problem.residuals(shock, points)
    assert float(jnp.max(jnp.abs(got["pde"]))) < 1e-4
    sine = problem.residuals(as_model(lambda p: -jnp.sin(jnp.pi * p[0]) * jnp.exp(-p[1])), points)
    assert float(jnp.max(jnp.abs(sine["ic"]))) < 1e-6
    assert float(jnp.max(jnp.abs(sine["bc"]))) < 1e-6


@pytest.mark.slow
def test_cavity_momentum_residual_vanishes_for_kovasznay_flow():
    # Kovasznay flow is an exact steady Navier-Stokes solution: u = psi_y, v = -psi_x with
    # psi = y - exp(lam x) sin(2 pi y) / (2 pi), p = (1 - exp(2 lam x)) / 2.
    reynolds = 40.0
    lam = reynolds / 2 - np.sqrt(reynolds**2 / 4 + 4 * np.pi**2)
    problem = problems.get("cavity", reynolds=reynolds)

    def kovasznay(point):
        x, y = point[0], point[1]
        psi = y - jnp.exp(lam * x) * jnp.sin(2 * jnp.pi * y) / (2 * jnp.pi)
        pressure = 0.5 * (1 - jnp.exp(2 * lam * x))
        return jnp.stack([psi, pressure])

    points = problem.sample(jax.random.key(4), 64)
    got = problem.residuals(kovasznay, points)
    assert float(jnp.max(jnp.abs(got["momentum_x"]))) < 1e-3
    assert float(jnp.max(jnp.abs(got["momentum_y"]))) < 1e-3
    # The velocity the problem observes is the Kovasznay velocity.
    x = points["momentum_x"][:5]
    observed = problem.observe(kovasznay, x)
    u = 1 - np.exp(lam * x[:, 0]) * np.cos(2 * np.pi * x[:, 1])
    v = lam / (2 * np.pi) * np.exp(lam * x[:, 0]) * np.sin(2 * np.pi * x[:, 1])
    np.testing.assert_allclose(observed[:, 1], u, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(observed[:, 2], v, rtol=1e-4, atol=1e-5)


def test_sampling_is_seeded_in_the_domain_and_latin():
    problem = problems.get("allen-cahn")
    a = problem.sample(jax.random.key(7), 100)
    b = problem.sample(jax.random.key(7), 100)
    np.testing.assert_array_equal(a["pde"], b["pde"])
    lower, upper = problem.domain
    assert bool(jnp.all(a["pde"] >= lower)) and bool(jnp.all(a["pde"] <= upper))
    # Latin hypercube: exactly one point per stratum in every coordinate.
    strata = np.floor((np.asarray(a["pde"]) - lower) / (upper - lower) * 100).astype(int)
    for column in strata.T:
        assert sorted(column.tolist()) == list(range(100))
    with pytest.raises(ValueError, match="num_residual"):
        problem.sample(jax.random.key(0), 0)


@pytest.mark.slow
def test_cavity_residuals_on_a_network_match_nested_autodiff():
    # The fast path (directional Taylor series through the MLP, mixed derivatives by polarisation) against
    # per-point nested reverse mode of the same network, in float64 so that only the method differs.
    import equinox as eqx

    from pinnkit.derivatives import mixed_derivative
    from pinnkit.nn import MLP

    with jax.enable_x64(True):
        problem = problems.get("cavity", reynolds=100.0)
        model = MLP(2, 2, width=12, depth=3, key=jax.random.key(5), domain=problem.domain, dtype=jnp.float64)
        points = problem.sample(jax.random.key(6), 32)
        got = eqx.filter_jit(problem.residuals)(model, points)

        def momentum(point):
            psi = lambda p: model(p)[0]
            d = lambda f, axes: mixed_derivative(f, point, axes)
            u, v = d(psi, (1,)), -d(psi, (0,))
            u_x, u_y, v_x, v_y = d(psi, (0, 1)), d(psi, (1, 1)), -d(psi, (0, 0)), -d(psi, (0, 1))
            laplace_u = d(psi, (0, 0, 1)) + d(psi, (1, 1, 1))
            laplace_v = -d(psi, (0, 0, 0)) - d(psi, (0, 1, 1))
            pressure = lambda p: model(p)[1]
            return jnp.stack([u * u_x + v * u_y + d(pressure, (0,)) - laplace_u / 100.0,
                              u * v_x + v * v_y + d(pressure, (1,)) - laplace_v / 100.0])

        want = jax.vmap(momentum)(points["momentum_x"])
        np.testing.assert_allclose(got["momentum_x"], want[:, 0], rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(got["momentum_y"], want[:, 1], rtol=1e-9, atol=1e-11)
