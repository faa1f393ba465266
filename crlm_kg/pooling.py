"""Pooled estimates: a random-effects meta-analysis of the log hazard ratios of comparable comparisons.

Comparable means: the same endpoint; the same contrast, i.e. the intervention arm adds a treatment of
the requested class to what the comparator arm gets (an add-on comparison) or, with a comparator
class, replaces a treatment of that class (head to head); the same setting; one figure per study
(the intention-to-treat one where the study reports several populations); randomised trials unless
asked otherwise; and a stated confidence interval (the standard error comes from it). Anything else
is excluded with its reason, and too few comparable inputs is a refusal, never a number.

Surgery and "no further treatment" arms (observation, surveillance) are background: they do not
make two arms differ. A figure reported as observation vs treatment is inverted (1/HR, CI bounds
swapped) so every study contributes treatment vs comparator.

The pooling itself is ``statsmodels.stats.meta_analysis.combine_effects``. Its DerSimonian–Laird
moment estimate of tau² is not truncated at zero (statsmodels 0.15); DerSimonian and Laird define it
as max(0, ·), so a negative estimate is read as tau² = 0, where the random-effects estimate is the
fixed-effect one that the same call returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from . import paths
from .store import IRI, Store

O = paths.CRLM
BACKGROUND = (O + "SurgicalTreatment", O + "Observation", O + "Surveillance")
NO_TREATMENT = (O + "Observation", O + "Surveillance")
# the analysed population a study's figure is taken from when it reports several, best first
POPULATION_ORDER = (O + "IntentionToTreatPopulation", None, O + "EligiblePopulation", O + "PerProtocolPopulation", O + "ResectedPopulation")
METHODS = {"dl": "DerSimonian-Laird", "pm": "Paule-Mandel (iterated)"}

HAZARD_RATIOS = """
SELECT ?figure ?study ?studyLabel ?endpoint ?hr ?lo ?hi ?level ?population ?populationDescription ?setting ?randomised ?design
       ?ia ?ca ?iaLabel ?caLabel WHERE {
  ?figure a crlm:HazardRatio ; crlm:ofStudy ?study ; crlm:endpoint ?endpoint ; crlm:value ?hr .
  OPTIONAL { ?study rdfs:label ?studyLabel }
  OPTIONAL { ?figure crlm:ciLower ?lo } OPTIONAL { ?figure crlm:ciUpper ?hi } OPTIONAL { ?figure crlm:ciLevel ?level }
  OPTIONAL { ?figure crlm:analysedPopulation ?population } OPTIONAL { ?figure crlm:populationDescription ?populationDescription }
  OPTIONAL { ?study crlm:studySetting ?setting }
  BIND(EXISTS { ?study a/rdfs:subClassOf* crlm:RandomisedControlledTrial } AS ?randomised)
  OPTIONAL { ?study a ?designClass . ?designClass rdfs:subClassOf* crlm:Study ; rdfs:label ?design .
             FILTER NOT EXISTS { ?study a ?sub . ?sub rdfs:subClassOf+ ?designClass . FILTER(?sub != ?designClass) } }
  OPTIONAL { ?figure crlm:interventionArm ?ia OPTIONAL { ?ia rdfs:label ?iaLabel } }
  OPTIONAL { ?figure crlm:comparatorArm ?ca OPTIONAL { ?ca rdfs:label ?caLabel } }
}"""

ARM_TREATMENTS = "SELECT ?arm ?treatment WHERE { ?arm crlm:armOf ?study ; crlm:treatment ?treatment }"
ANCESTORS = "SELECT ?t ?a WHERE { ?t rdfs:subClassOf* ?a . FILTER(isIRI(?t) && isIRI(?a)) ?t rdfs:subClassOf* crlm:Treatment }"


class PoolingRefused(Exception):
    """The inputs are not comparable, or too few: the reason, and what was left out and why."""

    def __init__(self, reason: str, excluded: list[dict[str, Any]] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.excluded = excluded or []


@dataclass
class Comparison:
    figure: str
    study: str
    study_label: str | None
    endpoint: str
    log_hr: float
    se: float | None
    hr_reported: float
    inverted: bool
    population: str | None
    setting: str | None
    randomised: bool
    design: str | None
    intervention: str | None
    comparator: str | None
    added: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)
    ci: tuple[float, float] | None = None
    assumed_level: bool = False


def _ancestors(store: Store) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for row in store.select(ANCESTORS):
        result.setdefault(str(row["t"]), set()).add(str(row["a"]))
    return result


def _is(treatment: str, cls: str, ancestors: dict[str, set[str]]) -> bool:
    return cls in ancestors.get(treatment, {treatment})


def comparisons(store: Store) -> list[Comparison]:
    """Every hazard ratio of the graph as a treatment-vs-comparator contrast on the log scale."""
    ancestors = _ancestors(store)
    arms: dict[str, set[str]] = {}
    for row in store.select(ARM_TREATMENTS):
        arms.setdefault(str(row["arm"]), set()).add(str(row["treatment"]))
    result = []
    for row in store.select(HAZARD_RATIOS):
        ia, ca = arms.get(str(row.get("ia")), set()), arms.get(str(row.get("ca")), set())
        inverted = any(_is(t, n, ancestors) for t in ia for n in NO_TREATMENT) and not any(_is(t, n, ancestors) for t in ca for n in NO_TREATMENT)
        if inverted:
            ia, ca = ca, ia
        active = lambda arm: {t for t in arm if not any(_is(t, b, ancestors) for b in BACKGROUND)}  # noqa: E731
        hr, lo, hi = float(row["hr"]), row.get("lo"), row.get("hi")
        sign = -1.0 if inverted else 1.0
        ci, se = None, None
        level = float(row["level"]) if row.get("level") is not None else 0.95
        if lo is not None and hi is not None and 0 < float(lo) < float(hi):
            z = stats.norm.isf((1 - level) / 2)
            se = (math.log(float(hi)) - math.log(float(lo))) / (2 * z)
            bounds = sorted((math.exp(sign * math.log(float(lo))), math.exp(sign * math.log(float(hi)))))
            ci = (bounds[0], bounds[1])
        result.append(Comparison(
            figure=str(row["figure"]), study=str(row["study"]), study_label=row.get("studyLabel"), endpoint=str(row["endpoint"]),
            log_hr=sign * math.log(hr), se=se, hr_reported=hr, inverted=inverted,
            population=str(row["population"]) if row.get("population") is not None else None,
            setting=str(row["setting"]) if row.get("setting") is not None else None,
            randomised=bool(row["randomised"]), design=row.get("design"),
            intervention=row.get("caLabel" if inverted else "iaLabel"), comparator=row.get("iaLabel" if inverted else "caLabel"),
            added=active(ia) - active(ca), removed=active(ca) - active(ia), ci=ci, assumed_level=row.get("level") is None,
        ))
    return result


def _iri(value: str | None, namespace: str) -> str | None:
    if value is None or value.startswith("http"):
        return value
    return namespace + value.split(":", 1)[-1]


def pool(store: Store, endpoint: str | None = None, intervention: str | None = None, comparator: str | None = None,
         setting: str | None = None, randomised_only: bool = True, figures: list[str] | None = None, method: str = "dl") -> dict[str, Any]:
    """The random-effects pooled hazard ratio of the comparable comparisons the arguments select
    (class and figure names may be bare: OverallSurvival, Chemotherapy, EORTC40983_PFSHazardRatioITT_SCR);
    ``PoolingRefused`` when fewer than two comparable ones remain or the figures named are not comparable."""
    if method not in METHODS:
        raise PoolingRefused(f"method must be one of {', '.join(METHODS)}")
    endpoint, intervention, comparator, setting = (_iri(endpoint, O), _iri(intervention, O), _iri(comparator, O), _iri(setting, O))
    wanted = {_iri(f, paths.CRLMD) for f in figures or []}
    ancestors = _ancestors(store)
    excluded: list[dict[str, Any]] = []
    chosen: list[Comparison] = []
    candidates = [c for c in comparisons(store) if (c.figure in wanted if wanted else c.endpoint == endpoint)]
    if wanted:
        missing = sorted(wanted - {c.figure for c in candidates})
        if missing:
            raise PoolingRefused(f"not a hazard ratio in the graph: {', '.join(missing)}")
        endpoints = {c.endpoint for c in candidates}
        if len(endpoints) > 1:
            raise PoolingRefused(f"the figures measure different endpoints ({', '.join(sorted(short(e) for e in endpoints))}); "
                                 "hazard ratios of different endpoints are not pooled", excluded)
    elif endpoint is None or intervention is None:
        raise PoolingRefused("give an endpoint and an intervention class, or the figures to pool")

    def exclude(c: Comparison, reason: str) -> None:
        excluded.append({"figure": c.figure, "study": c.study, "reason": reason})

    by_study: dict[str, list[Comparison]] = {}
    for c in candidates:
        if not c.added and not c.removed:
            exclude(c, "the arms do not differ in treatment (a prognostic or biomarker comparison)")
        elif intervention and not any(_is(t, intervention, ancestors) for t in c.added):
            exclude(c, f"the intervention arm adds no {short(intervention)}")
        elif intervention and any(_is(t, intervention, ancestors) for t in c.removed):
            exclude(c, f"the comparator arm also gets {short(intervention)}")
        elif comparator is None and c.removed and not wanted:
            exclude(c, "head to head (the comparator gets " + ", ".join(sorted(short(t) for t in c.removed)) + "), not an add-on comparison")
        elif comparator is not None and not (c.removed and all(_is(t, comparator, ancestors) for t in c.removed)):
            exclude(c, f"the comparator is not {short(comparator)}")
        elif randomised_only and not c.randomised:
            exclude(c, f"not a randomised trial ({c.design or 'design not stated'})")
        elif setting is not None and c.setting != setting:
            exclude(c, f"setting {short(c.setting) if c.setting else 'not stated'}, not {short(setting)}")
        elif c.se is None:
            exclude(c, "no confidence interval (the standard error of the log hazard ratio comes from it)")
        else:
            by_study.setdefault(c.study, []).append(c)
    for study, figures_of_study in by_study.items():
        if wanted and len(figures_of_study) > 1:
            raise PoolingRefused(f"several figures of one study ({short(study)}): each study is counted once", excluded)
        figures_of_study.sort(key=lambda c: (POPULATION_ORDER.index(c.population) if c.population in POPULATION_ORDER else len(POPULATION_ORDER), c.figure))
        chosen.append(figures_of_study[0])
        for other in figures_of_study[1:]:
            exclude(other, f"another population of a study already counted (its {short(figures_of_study[0].population) if figures_of_study[0].population else 'main'} figure is used)")
    settings = {c.setting for c in chosen}
    if len(chosen) >= 2 and len(settings) > 1:
        raise PoolingRefused("the studies are in different settings (" + ", ".join(sorted(short(s) if s else "not stated" for s in settings))
                             + "); choose one with setting", excluded)
    if len(chosen) < 2:
        raise PoolingRefused(f"fewer than 2 comparable comparisons ({len(chosen)} found): nothing to pool", excluded)
    chosen.sort(key=lambda c: c.study)
    fit = random_effects([c.log_hr for c in chosen], [c.se ** 2 for c in chosen], method)
    mean, se, weights = fit["mean"], fit["se"], fit["weights"]
    z = stats.norm.isf(0.025)
    return {
        "endpoint": short(chosen[0].endpoint),
        "intervention": short(intervention) if intervention else None,
        "comparator": short(comparator) if comparator else ("the same treatment without it (add-on)" if not wanted else None),
        "setting": short(chosen[0].setting) if chosen[0].setting else None,
        "method": f"random effects, {METHODS[method]} (statsmodels combine_effects)",
        "pooledHr": math.exp(mean), "ciLower": math.exp(mean - z * se), "ciUpper": math.exp(mean + z * se), "ciLevel": 0.95,
        "pValue": float(2 * stats.norm.sf(abs(mean / se))),
        "logHr": mean, "se": se, "tau2": fit["tau2"], "i2": fit["i2"], "q": fit["q"], "k": len(chosen),
        "studies": [
            {"study": c.study, "label": c.study_label, "figure": c.figure, "design": c.design, "population": short(c.population) if c.population else None,
             "intervention": c.intervention, "comparator": c.comparator, "hr": math.exp(c.log_hr), "ciLower": c.ci[0], "ciUpper": c.ci[1],
             "inverted": c.inverted, "ciLevelAssumed": c.assumed_level, "weight": float(w)}
            for c, w in zip(chosen, weights)
        ],
        "excluded": excluded,
    }


def random_effects(effects: list[float], variances: list[float], method: str = "dl") -> dict[str, Any]:
    """statsmodels' random-effects combination of ``effects`` (log hazard ratios) with their
    ``variances``: the pooled mean and its standard error, tau², I², Cochran's Q and the relative
    weights. tau² is truncated at 0 (see the module's note), and then the fixed-effect answer is it."""
    with np.errstate(invalid="ignore"):  # the untruncated negative tau² makes statsmodels take sqrt of a negative
        result = combine_effects(np.asarray(effects, float), np.asarray(variances, float), method_re="dl" if method == "dl" else "iterated")
    tau2 = max(0.0, float(result.tau2))
    if tau2 == 0.0:
        mean, se, weights = float(result.mean_effect_fe), float(result.sd_eff_w_fe), result.weights_rel_fe
    else:
        mean, se, weights = float(result.mean_effect_re), float(result.sd_eff_w_re), result.weights_rel_re
    q, df = float(result.q), len(effects) - 1
    return {"mean": mean, "se": se, "tau2": tau2, "i2": max(0.0, (q - df) / q) if q > 0 else 0.0, "q": q, "weights": [float(w) for w in weights]}


def short(iri: str | IRI | None) -> str:
    text = str(iri.value if isinstance(iri, IRI) else iri)
    for namespace in (O, paths.CRLMD):
        if text.startswith(namespace):
            return text[len(namespace):]
    return text
