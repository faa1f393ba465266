"""The codes the mapping reads, each verified against a public page (docs/fhir-mapping.md names it).

A code that could not be verified is deliberately absent: the resource or element that
carries it is then reported as unmapped, never guessed."""

from __future__ import annotations

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
ICDO3 = "http://terminology.hl7.org/CodeSystem/icd-o-3"
HGNC_SYSTEMS = {"http://www.genenames.org", "http://www.genenames.org/geneId"}
UCUM = "http://unitsofmeasure.org"
# The project's own code system for liver measurements that mCODE does not profile.
CRLM_LIVER = "https://w3id.org/crlm-kg/fhir/CodeSystem/liver"

MCODE = "http://hl7.org/fhir/us/mcode/StructureDefinition/"
PRIMARY_CANCER_CONDITION = MCODE + "mcode-primary-cancer-condition"
SECONDARY_CANCER_CONDITION = MCODE + "mcode-secondary-cancer-condition"

# primaryTumor.location: ICD-O-3 topography (dotted or not) and SNOMED CT body structures.
ICDO3_LOCATION = {
    "C18.0": "caecum", "C18.2": "ascending", "C18.3": "hepatic-flexure", "C18.4": "transverse",
    "C18.5": "splenic-flexure", "C18.6": "descending", "C18.7": "sigmoid", "C19.9": "rectosigmoid",
    "C20.9": "rectum",
}
SNOMED_LOCATION = {
    "32713005": "caecum", "9040008": "ascending", "48338005": "hepatic-flexure", "485005": "transverse",
    "72592005": "splenic-flexure", "32622004": "descending", "60184004": "sigmoid", "34402009": "rectum",
}

# Secondary cancer sites: the condition's code (SNOMED CT disorder) or its body site (ICD-O-3).
LIVER = "liver"
SNOMED_SECONDARY_SITE = {"94381002": LIVER, "94391008": "lung", "94222008": "bone", "94225005": "other"}
ICDO3_SITE = {"C22.0": LIVER, "C34.9": "lung"}
SNOMED_BODY_SITE = {"39607008": "lung"}

# TNM categories (Observation.code) and their values.
T_CATEGORY_CODES = {"78873005": "T", "399504009": "cT", "384625004": "pT"}
N_CATEGORY_CODES = {"277206009": "N", "399534004": "cN", "371494008": "pN"}
T_VALUES = {
    "1228938002": "T3",  # cT3
    "1228957006": "T1", "1229852009": "T2", "1229859000": "T3", "1229864001": "T4",  # pT1 … pT4
    "1229865000": "T4", "1229866004": "T4",  # pT4a, pT4b
}
N_VALUES = {"1229967007": False, "1229947003": False, "1229951001": True, "1229957002": True}  # cN0, pN0, pN1, pN2

CEA = "2039-6"
CEA_UNITS = {"ng/mL": 1.0, "ug/L": 1.0}  # 1 µg/L = 1 ng/mL
ECOG = "89247-1"
VARIANT_ASSESSMENT = "69548-6"
GENE_STUDIED = "48018-6"
AMINO_ACID_CHANGE = "48005-3"
PRESENT, ABSENT = "LA9633-4", "LA9634-2"
MSI = "81695-9"
MSI_VALUES = {"LA14122-8": "pMMR", "LA26203-2": "dMMR"}  # stable (MSS), MSI-H
GENES = {"HGNC:6407": "KRAS", "HGNC:7989": "NRAS", "HGNC:1097": "BRAF"}
V600E = {"p.Val600Glu", "p.(Val600Glu)", "V600E"}

LIVER_CODES = {"metastasis-count": "liverMetastases.count", "largest-diameter": "liverMetastases.largestDiameterMm",
               "future-liver-remnant": "liver.futureLiverRemnantPercent", "fibrosis-or-cirrhosis": "liver.fibrosisOrCirrhosis"}
LENGTH_TO_MM = {"mm": 1.0, "cm": 10.0}
