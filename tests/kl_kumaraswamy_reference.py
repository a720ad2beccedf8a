"""Prints the reference table ``KL_REFERENCE`` of tests/test_distributions.py.

KL(Kumaraswamy(a, b) || Beta(alpha, beta)) by 30-digit mpmath arithmetic, independent of
the package: the entropy and E[log x] are closed form (Jones 2009), and E[log(1 - x)] is
integrated with mpmath's tanh-sinh quadrature in t = -log u (x = (1 - e^{-t/b})^{1/a},
u ~ U(0, 1)), split at t = b 10^k so that the transition of e^{-t/b} is resolved for any
b. Needs mpmath (not a test dependency: the table is pasted into the test).

    python tests/kl_kumaraswamy_reference.py > /tmp/table.txt   # about a minute
"""

import mpmath as mp

mp.mp.dps = 30
EXPONENTS = [k / 2 for k in range(-4, 5)]  # a, b = 10^k: 0.01, 0.0316, ..., 100
BETAS = [(1, 0.1), (1, 5), (1, 10), (2, 3)]


def expected_log_one_minus_x(a, b):
    r"""E[log(1 - x)] = -1/b + int_0^inf e^{-t} log((1 - (1 - w)^{1/a}) / w) dt, w = e^{-t/b}."""
    def h(t):
        log_w = -t / b
        if log_w > -1:
            log_one_minus_w = mp.log(-mp.expm1(log_w))
        else:
            log_one_minus_w = mp.log1p(-mp.exp(log_w))
        if log_one_minus_w == 0:
            return -mp.log(a)
        return mp.log(-mp.expm1(log_one_minus_w / a)) - log_w

    splits = [b * mp.mpf(10) ** k for k in range(-8, 4)] + [mp.mpf(x) for x in (1, 5, 20, 60)]
    points = [mp.mpf(0)] + sorted(p for p in set(splits) if p < 200) + [mp.inf]
    return -1 / b + mp.quad(lambda t: mp.exp(-t) * h(t), points)


def kl(a, b, alpha, beta):
    a, b, alpha, beta = map(mp.mpf, (a, b, alpha, beta))
    harmonic_b = mp.digamma(b + 1) + mp.euler
    entropy = (1 - 1 / b) + (1 - 1 / a) * harmonic_b - mp.log(a) - mp.log(b)
    expected_log_p = ((alpha - 1) * -harmonic_b / a
                      + (beta - 1) * expected_log_one_minus_x(a, b)
                      - mp.log(mp.beta(alpha, beta)))
    return -entropy - expected_log_p


if __name__ == "__main__":
    print("KL_REFERENCE = [  # (log10 a, log10 b, alpha, beta, KL)")
    for i in EXPONENTS:
        for j in EXPONENTS:
            a, b = mp.mpf(10) ** i, mp.mpf(10) ** j
            for alpha, beta in BETAS:
                print(f"    ({i}, {j}, {alpha}, {beta}, {mp.nstr(kl(a, b, alpha, beta), 17)}),")
    print("]")
