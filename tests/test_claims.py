"""The verdict rules, tested as statistics: error rates under no effect, power under a large
effect, and hand-computed examples for Welch, paired, TOST and non-inferiority tests."""
import math

import numpy as np
import pytest
from scipy import stats

from accel.repro import claims
from accel.repro.claims import FAILED, HELD, INCONCLUSIVE

SIMS = 2000
MC = 3 * math.sqrt(claims.ALPHA * (1 - claims.ALPHA) / SIMS)  # three Monte-Carlo standard errors


def _rate(make, n, verdict, seed=0):
    rng = np.random.default_rng(seed)
    return np.mean([make(rng, n).verdict == verdict for _ in range(SIMS)])


@pytest.mark.parametrize("n", [3, 5, 10])
def test_no_effect_says_held_at_most_at_the_nominal_rate(n):
    less = lambda rng, n: claims.less_than("c", "s", "src", rng.normal(size=n), rng.normal(size=n))
    assert _rate(less, n, HELD) <= claims.ALPHA + MC
    # the same bound holds for the opposite error, and for unequal spreads (Welch)
    assert _rate(less, n, FAILED, seed=1) <= claims.ALPHA + MC
    uneq = lambda rng, n: claims.less_than("c", "s", "src", rng.normal(size=n), 5 * rng.normal(size=n))
    assert _rate(uneq, n, HELD, seed=2) <= claims.ALPHA + MC
    paired = lambda rng, n: claims.less_than("c", "s", "src", *(rng.normal(size=(2, n)) + rng.normal(size=n)),
                                             paired=True)
    assert _rate(paired, n, HELD, seed=3) <= claims.ALPHA + MC
    one = lambda rng, n: claims.mean_compare("m", "s", "src", rng.normal(size=n), ">", 0.0)
    assert _rate(one, n, HELD, seed=4) <= claims.ALPHA + MC


@pytest.mark.parametrize("n", [3, 5, 10])
def test_equivalence_is_not_declared_at_the_margin(n):
    """With the true difference exactly at the margin, TOST says equivalent at most α of the time."""
    make = lambda rng, n: claims.equivalent("e", "s", "src", rng.normal(size=n) + 1.0, rng.normal(size=n), margin=1.0)
    assert _rate(make, n, HELD) <= claims.ALPHA + MC


def test_a_large_effect_is_held_and_its_reverse_failed():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 0.1, 5), rng.normal(1, 0.1, 5)
    assert claims.less_than("c", "s", "src", a, b).verdict == HELD
    assert claims.less_than("c", "s", "src", b, a).verdict == FAILED
    assert claims.greater_than("c", "s", "src", b, a).verdict == HELD
    assert claims.less_than("c", "s", "src", [1.0, 3.0, -1.0], [1.2, 1.3, 1.1]).verdict == INCONCLUSIVE


def test_welch_matches_scipy_by_hand():
    a, b = [1.0, 1.2, 0.9, 1.1], [1.5, 1.9, 1.4]
    c = claims.less_than("c", "s", "src", a, b)
    ref = stats.ttest_ind(a, b, equal_var=False, alternative="less")
    assert c.test["p_value"] == pytest.approx(ref.pvalue) and c.test["df"] == pytest.approx(ref.df)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    assert c.test["se"] == pytest.approx(math.sqrt(va + vb))
    assert c.test["df"] == pytest.approx((va + vb) ** 2 / (va ** 2 / 3 + vb ** 2 / 2))
    assert c.test["n"] == [4, 3] and c.test["test"] == "Welch t-test"
    lo, hi = ref.confidence_interval(0.95)  # one-sided 0.95: (-inf, hi]; compare the upper end
    q = stats.t.ppf(0.975, ref.df)
    assert c.test["ci_high"] == pytest.approx(c.measured + q * c.test["se"])
    assert c.test["mde"] == pytest.approx((q + stats.t.ppf(0.8, ref.df)) * c.test["se"])


def test_paired_test_uses_the_pairing():
    base = np.array([0.0, 10.0, 20.0, 30.0])          # seeds differ a lot ...
    a, b = base, base + np.array([0.9, 1.1, 1.0, 1.05])  # ... but b is always about 1 higher
    assert claims.less_than("c", "s", "src", a, b).verdict == INCONCLUSIVE  # unpaired: the seed spread hides it
    c = claims.less_than("c", "s", "src", a, b, paired=True)
    assert c.verdict == HELD and c.test["test"] == "paired t-test"
    assert c.test["p_value"] == pytest.approx(stats.ttest_rel(a, b, alternative="less").pvalue)
    with pytest.raises(ValueError, match="equal length"):
        claims.less_than("c", "s", "src", [1, 2, 3], [1, 2, 3, 4], paired=True)


def test_tost_by_hand():
    a, b = np.array([1.00, 1.01, 0.99, 1.02]), np.array([1.02, 1.03, 1.01, 1.00])
    c = claims.equivalent("e", "s", "src", a, b, margin=0.05)
    se = math.sqrt(a.var(ddof=1) / 4 + b.var(ddof=1) / 4)
    d = a.mean() - b.mean()
    df = c.test["df"]
    p = max(stats.t.sf((d + 0.05) / se, df), stats.t.cdf((d - 0.05) / se, df))
    assert c.verdict == HELD and c.test["p_value"] == pytest.approx(p)
    assert claims.equivalent("e", "s", "src", a, b + 1, margin=0.05).verdict == FAILED
    assert claims.equivalent("e", "s", "src", [0, 1, 2], [0.1, 1.1, 2.1], margin=0.1).verdict == INCONCLUSIVE


def test_non_inferiority_holds_when_the_baseline_wins_by_far():
    adam, lamb = [0.95, 0.96, 0.955], [0.80, 0.82, 0.81]  # accuracies: "match or exceed"
    assert claims.not_worse("n", "s", "src", adam, lamb, margin=0.01, better="higher").verdict == HELD
    assert claims.equivalent("n", "s", "src", adam, lamb, margin=0.01).verdict == FAILED  # the old, wrong shape
    assert claims.not_worse("n", "s", "src", lamb, adam, margin=0.01, better="higher").verdict == FAILED
    c = claims.not_worse("n", "s", "src", [1.0, 1.1, 1.05], [1.0, 1.02, 1.01], margin=0.2, better="lower")
    d, se = c.measured, c.test["se"]
    assert c.test["p_value"] == pytest.approx(stats.t.cdf((d - 0.2) / se, c.test["df"]))
    with pytest.raises(ValueError, match="better"):
        claims.not_worse("n", "s", "src", adam, lamb, margin=0.01, better="more")


def test_mean_within_and_compare():
    x = [0.70, 0.71, 0.69, 0.705]
    assert claims.mean_within("m", "s", "src", x, 0.65, 0.76).verdict == HELD
    assert claims.mean_within("m", "s", "src", x, 0.8, 0.9).verdict == FAILED
    assert claims.mean_compare("m", "s", "src", x, ">", 0.6).verdict == HELD
    assert claims.mean_compare("m", "s", "src", x, "<", 0.6).verdict == FAILED


def test_fewer_than_three_seeds_are_refused():
    with pytest.raises(ValueError, match="at least 3"):
        claims.less_than("c", "s", "src", [1.0, 2.0], [2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="illustration"):
        claims.mean_compare("c", "s", "src", [1.0], ">", 0)


def test_deterministic_claims_declare_their_kind():
    c = claims.threshold("a", "s", "src", 0.5, "<", 1, kind="check")
    assert c.verdict == HELD and c.kind == "check" and not c.is_evidence
    assert claims.threshold("a", "s", "src", 1.5, "<", 1, kind="check").verdict == FAILED
    assert claims.threshold("a", "s", "src", float("nan"), "<", 1, kind="illustration").verdict == FAILED
    assert claims.within("a", "s", "src", 0.7, 0.65, 0.76, kind="check").verdict == HELD
    assert claims.within("a", "s", "src", 0.8, 0.65, 0.76, kind="check").verdict == FAILED
    with pytest.raises(ValueError, match="needs seeds"):
        claims.threshold("a", "s", "src", 0.5, "<", 1, kind="claim")
    with pytest.raises(ValueError, match="valid"):
        claims.threshold("a", "s", "src", 1, "!=", 1, kind="check")
    with pytest.raises(ValueError):
        claims.Claim("x", "s", "src", "c", 1.0, "probably")


def test_non_finite_values_follow_one_rule():
    a, b = [1.0, float("nan"), 1.1], [2.0, 2.1, 1.9]
    c = claims.less_than("c", "s", "src", a, b)
    assert c.verdict == INCONCLUSIVE and "non-finite" in c.details["why"]
    c = claims.greater_than("c", "s", "src", [0.9, float("nan"), 0.91], [0.5, 0.52, 0.51], worst=0.1)
    assert c.test["nonfinite_replaced_by"] == 0.1 and c.verdict in (HELD, INCONCLUSIVE)


def test_censored_bounds_only_keep_verdicts_they_cannot_overturn():
    steps_a, steps_b = [10, 11, 12], [100, 100, 100]
    # b hit its budget (its true steps are larger): "a needs fewer steps" is only stronger
    c = claims.less_than("c", "s", "src", steps_a, steps_b, censored_b=[True, True, True])
    assert c.verdict == HELD and "censored" in c.details["why"]
    # a hit its budget: "a needs fewer steps" would rest on bounds that could be far too small
    c = claims.less_than("c", "s", "src", steps_a, steps_b, censored_a=[True, False, False])
    assert c.verdict == INCONCLUSIVE
    c = claims.greater_than("c", "s", "src", steps_b, steps_a, censored_a=[True, True, True])
    assert c.verdict == HELD


def test_unmet_precondition_makes_a_claim_inconclusive_and_says_which():
    c = claims.less_than("c", "s", "src", [1, 1.1, 0.9], [2, 2.1, 1.9], requires={"the baseline diverged": False})
    assert c.verdict == INCONCLUSIVE and c.details["unmet_precondition"] == ["the baseline diverged"]
    assert claims.threshold("t", "s", "src", 0.5, "<", 1, kind="check", requires={"x": True}).verdict == HELD


def test_record_fields():
    c = claims.less_than("c", "s", "src", [1, 1.1, 0.9], [2, 2.1, 1.9]).to_dict()
    assert c["kind"] == "claim" and {"n", "test", "p_value", "ci_low", "ci_high", "mde", "df"} <= set(c["test"])


def test_no_notebook_sets_a_verdict(root):
    """Verdicts are computed by accel.repro.claims, never typed into a chapter."""
    import re
    pattern = re.compile(r"\.verdict\s*=(?!=)|Claim\([^)]*\b(HELD|FAILED|INCONCLUSIVE|\"held\"|\"failed\"|\"inconclusive\")")
    hits = [f"{p.name}:{i}: {line.strip()}" for p in sorted((root / "notebooks").glob("*.md"))
            for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not hits, "a notebook sets a verdict by hand:\n" + "\n".join(hits)


def test_zero_spread_is_not_certainty():
    """Three seeds with the same paired difference (a tie of a discrete metric) decide nothing."""
    a, b = [0.900, 0.910, 0.920], [0.908, 0.918, 0.928]
    c = claims.less_than("c", "s", "src", a, b, paired=True)
    assert c.verdict == INCONCLUSIVE and "no spread" in c.details["why"]
    assert claims.mean_compare("m", "s", "src", [1.0, 1.0, 1.0], ">", 0).verdict == INCONCLUSIVE
