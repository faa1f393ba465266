"""The evidence response as the OpenAPI document describes it (docs/patient-contract.md,
"The evidence response"). Stable keys are typed; more may be added, as the contract allows."""

from __future__ import annotations

from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field


class Loose(BaseModel):
    """Stable keys are typed; more may be added (the contract allows it)."""

    model_config = ConfigDict(extra="allow")


class FongScore(Loose):
    min: Optional[int] = Field(None, description="lowest score the known fields allow")
    max: Optional[int] = Field(None, description="highest score the known fields allow")
    missing: list[str] = Field(default_factory=list, description="fields whose absence widens the range")
    source: Optional[str] = None


class TumourBurdenScore(Loose):
    value: Optional[float] = None
    zone: Optional[str] = None
    source: Optional[str] = None


class FLRAdequacy(Loose):
    value: Optional[bool] = None
    threshold: Optional[float] = None
    source: Optional[str] = None


class Derived(Loose):
    fongScore: FongScore
    tumourBurdenScore: TumourBurdenScore
    sidedness: Optional[str] = Field(None, description="left, right, or null when the location is missing or unassigned")
    futureLiverRemnantAdequate: FLRAdequacy
    classes: list[str] = Field(default_factory=list, description="defined patient classes of the ontology this patient falls in")


class CriterionResult(Loose):
    id: str
    text: str
    kind: str = Field(description="inclusion or exclusion")
    status: str = Field(description="met, not-met or unknown: whether the criterion is satisfied for eligibility "
                                    "(for an exclusion criterion, met means the patient is NOT excluded)")
    excludes: Optional[bool] = Field(None, description="exclusion criteria only: true when the excluding condition holds, "
                                                       "false when it does not, null when unknown")
    evaluable: bool
    field: Optional[str] = None
    missingFields: list[str] = Field(default_factory=list, description="the record fields that would decide an unknown verdict")
    patientValue: Any = None
    sourceWording: Optional[str] = None
    source: Optional[str] = None


class OutcomeFigure(Loose):
    id: str
    endpoint: Optional[str] = None
    primary: bool = Field(False, description="the figure reports the trial's primary endpoint (listed first)")
    value: Optional[float] = None
    unit: Optional[str] = None
    source: Optional[str] = None
    quote: Optional[str] = None


class Headline(Loose):
    endpoint: Optional[str] = None
    label: Optional[str] = Field(None, description="the figure's label, naming its arms and population")
    population: Optional[str] = Field(None, description="the analysed population where the source names one (e.g. a molecular subgroup)")
    statistic: Optional[str] = Field(None, description="HazardRatio, OddsRatio, …")
    value: Optional[float] = None
    ciLower: Optional[float] = None
    ciUpper: Optional[float] = None
    pValue: Optional[float] = None
    primary: bool = Field(False, description="the effect on the trial's primary endpoint (else its first comparative result)")


class TrialResult(Loose):
    id: str
    label: str
    status: str = Field(description="eligible, ineligible or undetermined: whether the patient matches the trial's population "
                                    "(a completed trial can be eligible; see recruitment)")
    design: Optional[str] = Field(None, description="randomised-controlled-trial, single-arm-trial, prospective-cohort, "
                                                    "retrospective-cohort, case-series, meta-analysis, or a more specific ontology value")
    phase: Optional[str] = None
    sampleSize: Optional[int] = None
    registryIds: list[str] = Field(default_factory=list)
    recruitment: str = Field("unknown", description="recruiting, completed or unknown, from the sources with provenance")
    headline: Optional[Headline] = None
    criteria: list[CriterionResult]
    missingFields: list[str] = Field(default_factory=list)
    outcomes: list[OutcomeFigure]


class StatementResult(Loose):
    id: str
    kind: str
    label: Optional[str] = None
    direction: Optional[str] = None
    level: Optional[str] = None
    source: Optional[str] = None
    applicability: str = Field(description="applies, does-not-apply (see notMet / excludedBy) or unknown (see missingFields)")
    population: list[CriterionResult] = Field(default_factory=list, description="the criteria of the population the statement was shown in")
    missingFields: list[str] = Field(default_factory=list)


class TreatmentRef(Loose):
    id: str
    label: Optional[str] = None


class Caution(Loose):
    id: str
    label: Optional[str] = None
    text: Optional[str] = None
    reason: str
    certainty: str = Field(description="certain (the patient is in the population) or possible (undecided: see missingFields)")
    treatments: list[TreatmentRef | str] = Field(default_factory=list, description="the treatments (and their subclasses) the caution covers: "
                                                                                    "ids with labels in the full view, ids in the summary")
    source: Optional[str] = None
    quote: Optional[str] = None


class SummaryRecommendation(Loose):
    id: str
    label: Optional[str] = None
    kind: str
    level: Optional[str] = None
    direction: Optional[str] = None
    applicability: str


class SummaryTrial(Loose):
    id: str
    label: str
    design: Optional[str] = None
    phase: Optional[str] = None
    sampleSize: Optional[int] = None
    registryIds: list[str] = Field(default_factory=list)
    status: str
    recruitment: str
    headline: Optional[Headline] = None


class DecidingField(Loose):
    field: str
    decides: int = Field(description="how many undetermined verdicts (trials, statements, scores) this field would decide")


SUMMARY_EXAMPLE = {
    "cautions": [{"id": "Stmt_OPUSCetuximabKRASMutantWorse_S001", "label": "Adding cetuximab to FOLFOX-4 worsens outcomes in KRAS-mutant disease (OPUS)",
                  "reason": "… reports harm for cetuximab therapy in a population this patient belongs to", "certainty": "certain",
                  "treatments": ["Cetuximab"], "source": "Seed 001"}],
    "recommendations": [{"id": "Rec_NCCN_ResectionOverAblation", "label": "NCCN footnote bb: resection is preferred over locally ablative procedures",
                         "kind": "recommendation", "level": "preferred", "direction": "benefit", "applicability": "applies"}],
    "trials": [{"id": "EORTC40983", "label": "EORTC 40983", "design": "randomised-controlled-trial", "phase": "3", "sampleSize": 364,
                "registryIds": ["NCT00006479"], "status": "eligible", "recruitment": "unknown",
                "headline": {"endpoint": "progression-free survival", "statistic": "HazardRatio", "value": 0.77, "ciLower": 0.6,
                             "ciUpper": 1.0, "pValue": 0.041, "primary": True}}],
    "decidingFields": [{"field": "molecular.ras", "decides": 7}],
}


class Summary(Loose):
    """What a tumour board reads first."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [SUMMARY_EXAMPLE]})

    cautions: list[Caution] = Field(description="evidence of harm or no benefit in the patient's subgroup, and treatments a guideline excludes the patient from")
    subgroupFindings: list[SummaryRecommendation] = Field(default_factory=list, description="evidence statements that apply because of the patient's molecular subgroup (BRAF V600E, RAS, MMR, …)")
    recommendations: list[SummaryRecommendation] = Field(description="recommendations and statements that apply, ranked by grade and specificity")
    trials: list[SummaryTrial] = Field(description="eligible and undetermined trials, randomised phase 3 first")
    decidingFields: list[DecidingField] = Field(description="missing fields that would decide undetermined verdicts, most deciding first")


class EvidenceResponse(Loose):
    """``?view=summary`` returns ``patient``, ``derived`` and ``summary`` only; the full view everything."""

    patient: Optional[str]
    summary: Optional[Summary] = None
    derived: Optional[Derived] = None
    trials: Optional[list[TrialResult]] = None
    recommendations: Optional[list[StatementResult]] = None
    cautions: Optional[list[Caution]] = None
    fhirUnmapped: Optional[list[dict[str, str]]] = Field(None, description="FHIR bundles only: each resource and element that gave no field, and why")
    dataVersion: Optional[str] = Field(None, description="the release number and the graph's content hash this answer was computed from (cite it)")
