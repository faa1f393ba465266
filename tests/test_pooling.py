"""Pooled estimates (issue 15): a random-effects meta-analysis of comparable log hazard ratios,
checked against the DerSimonian-Laird formulas written out here, and refusals with reasons."""

from __future__ import annotations

import math

import pytest

from crlm_kg import paths
from crlm_kg.pooling import PoolingRefused, pool, random_effects

D = paths.CRLMD
Z = 1.959963984540054  # the 97.5th percentile of the standard normal


def dersimonian_laird(log_hrs: list[float], ses: list[float]) -> dict:
    """DerSimonian & Laird (1986) by hand: inverse-variance weights, Cochran's Q, the moment
    estimate of tau² truncated at 0, random-effects weights, the pooled mean and its SE, and I²."""
    w = [1 / s ** 2 for s in ses]
    fixed = sum(wi * y for wi, y in zip(w, log_hrs)) / sum(w)
    q = sum(wi * (y - fixed) ** 2 for wi, y in zip(w, log_hrs))
    c = sum(w) - sum(wi ** 2 for wi in w) / sum(w)
    tau2 = max(0.0, (q - (len(log_hrs) - 1)) / c)
    w_re = [1 / (s ** 2 + tau2) for s in ses]
    mean = sum(wi * y for wi, y in zip(w_re, log_hrs)) / sum(w_re)
    return {"mean": mean, "se": math.sqrt(1 / sum(w_re)), "tau2": tau2, "q": q, "i2": max(0.0, (q - (len(log_hrs) - 1)) / q)}


def se_from_ci(lower: float, upper: float) -> float:
    return (math.log(upper) - math.log(lower)) / (2 * Z)


def test_statsmodels_matches_the_dl_formulas_with_heterogeneity():
    # CRYSTAL (0.85, 0.72-0.99) and New EPOC (1.48, 1.04-2.12) PFS: strongly heterogeneous, tau² > 0
    log_hrs = [math.log(0.85), math.log(1.48)]
    ses = [se_from_ci(0.72, 0.99), se_from_ci(1.04, 2.12)]
    fit, hand = random_effects(log_hrs, [s ** 2 for s in ses]), dersimonian_laird(log_hrs, ses)
    assert hand["tau2"] > 0.05 and hand["i2"] > 0.8
    for key in ("mean", "se", "tau2", "q", "i2"):
        assert fit[key] == pytest.approx(hand[key], rel=1e-9), key


def test_dl_estimate_below_zero_is_truncated_to_the_fixed_effect():
    log_hrs, ses = [math.log(0.8), math.log(0.82), math.log(0.79)], [0.2, 0.25, 0.3]
    fit, hand = random_effects(log_hrs, [s ** 2 for s in ses]), dersimonian_laird(log_hrs, ses)
    assert fit["tau2"] == hand["tau2"] == 0.0 and fit["i2"] == 0.0
    assert fit["mean"] == pytest.approx(hand["mean"], rel=1e-12) and fit["se"] == pytest.approx(hand["se"], rel=1e-12)


def test_pooled_pfs_of_chemotherapy_around_resection(repo_store):
    # EORTC 40983 ITT PFS 0.79 (0.62-1.02) and Mitry 2008 PFS 1.32 (1.00-1.76) reported as resection alone
    # vs adjuvant chemotherapy, so inverted; the resected/eligible EORTC figures are not counted twice
    answer = pool(repo_store, endpoint="ProgressionFreeSurvival", intervention="Chemotherapy", setting="Resectable", randomised_only=False)
    hand = dersimonian_laird([math.log(0.79), -math.log(1.32)], [se_from_ci(0.62, 1.02), se_from_ci(1.00, 1.76)])
    assert answer["k"] == 2 and {s["figure"] for s in answer["studies"]} == {
        D + "EORTC40983_PFSHazardRatioITT_SCR", D + "Mitry2008PooledAdjuvant_PFSHazardRatio_S001"}
    assert answer["pooledHr"] == pytest.approx(math.exp(hand["mean"]), rel=1e-9)
    assert answer["ciLower"] == pytest.approx(math.exp(hand["mean"] - Z * hand["se"]), rel=1e-9)
    assert answer["ciUpper"] == pytest.approx(math.exp(hand["mean"] + Z * hand["se"]), rel=1e-9)
    assert answer["tau2"] == hand["tau2"] and answer["i2"] == pytest.approx(hand["i2"])
    assert round(answer["pooledHr"], 3) == 0.776 and (round(answer["ciLower"], 3), round(answer["ciUpper"], 3)) == (0.643, 0.935)
    mitry = next(s for s in answer["studies"] if "Mitry" in s["figure"])
    assert mitry["inverted"] and mitry["hr"] == pytest.approx(1 / 1.32) and "adjuvant" in mitry["intervention"]
    reasons = {e["figure"]: e["reason"] for e in answer["excluded"]}
    assert "another population" in reasons[D + "EORTC40983_PFSHazardRatioResected_S001"]


@pytest.mark.parametrize("kwargs,reason", [
    ({"endpoint": "ProgressionFreeSurvival", "intervention": "Chemotherapy", "setting": "Resectable"}, "fewer than 2"),
    ({"endpoint": "ProgressionFreeSurvival", "intervention": "AntiEGFRTherapy"}, "different settings"),
    ({"figures": ["EORTC40983_PFSHazardRatioITT_SCR", "JCOG0603_DFSHazardRatio_S001"]}, "different endpoints"),
    ({"figures": ["EORTC40983_PFSHazardRatioITT_SCR", "OPUS_PFSHazardRatioKRASWildType_S001"]}, "fewer than 2"),
    ({"endpoint": "OverallSurvival", "intervention": "HepaticArteryInfusion"}, "fewer than 2"),
])
def test_refuses_inputs_that_are_not_comparable(repo_store, kwargs, reason):
    with pytest.raises(PoolingRefused, match=reason):
        pool(repo_store, **kwargs)


def test_refusal_says_why_each_figure_was_left_out(repo_store):
    with pytest.raises(PoolingRefused) as info:
        pool(repo_store, endpoint="ProgressionFreeSurvival", intervention="Chemotherapy", setting="Resectable")
    reasons = {e["figure"]: e["reason"] for e in info.value.excluded}
    assert reasons[D + "Mitry2008PooledAdjuvant_PFSHazardRatio_S001"].startswith("not a randomised trial")
    assert "head to head" not in reasons.get(D + "EORTC40983_PFSHazardRatioITT_SCR", "")
    with pytest.raises(PoolingRefused) as info:
        pool(repo_store, figures=["EORTC40983_PFSHazardRatioITT_SCR", "OPUS_PFSHazardRatioKRASWildType_S001"])
    assert "no confidence interval" in {e["figure"]: e["reason"] for e in info.value.excluded}[D + "OPUS_PFSHazardRatioKRASWildType_S001"]


@pytest.mark.slow
def test_cli_pool_prints_the_estimate_or_the_reason():
    import json
    import subprocess
    import sys

    base = [sys.executable, "-m", "crlm_kg.cli", "pool", "--endpoint", "ProgressionFreeSurvival", "--intervention", "Chemotherapy", "--setting", "Resectable"]
    ok = subprocess.run(base + ["--any-design"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert round(json.loads(ok.stdout)["pooledHr"], 3) == 0.776
    refused = subprocess.run(base, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1 and "refused: fewer than 2" in refused.stderr and "Traceback" not in refused.stderr
