"""The graph's structure, read once per store and kept (the graph is read-only while the service runs)."""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import sys
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import paths
from ..store import Store
from . import sparql
from .common import first, short
from .criteria import Criterion


log = logging.getLogger(__name__)

_COMPARISON = paths.CRLM + "Comparison"


def _deterministic(entry: dict[str, Any]) -> dict[str, Any]:
    for key in ("settings", "conflictsWith"):
        if key in entry:
            entry[key] = sorted(entry[key])
    if "supportedBy" in entry:
        entry["supportedBy"] = sorted(entry["supportedBy"], key=lambda s: s["id"])
    return entry


class GraphStructure:
    def __init__(self, store: Store):
        self.store = store

    @cached_property
    def criteria(self) -> dict[str, Criterion]:
        result: dict[str, Criterion] = {}
        for row in self.store.select(sparql.CRITERIA):
            iri = str(row["crit"])
            kind_iri = str(row["kind"])
            kind = "exclusion" if kind_iri.endswith("ExclusionCriterion") else ("component" if kind_iri.endswith("ScoreComponent") else "inclusion")
            existing = result.get(iri)
            if existing is not None:
                if kind == "exclusion":
                    existing.kind = kind
                existing.label = first(existing.label, row.get("label"))
                existing.quote = first(existing.quote, row.get("quote"))
                existing.source = first(existing.source, row.get("docLabel"))
                existing.locator = first(existing.locator, row.get("locator"))
                existing.note = first(existing.note, row.get("note"))
                continue
            result[iri] = Criterion(
                iri=iri, kind=kind, label=row.get("label"), quote=row.get("quote"),
                characteristic=str(row["char"]) if "char" in row else None,
                operator=short(row["op"]) if "op" in row else None,
                threshold=row.get("thr"),
                evaluable=("char" in row and "op" in row and row.get("freeText") is not True),
                source=row.get("docLabel"), locator=row.get("locator"), note=row.get("note"),
            )
        for row in sorted(self.store.select(sparql.REQUIRED_VALUES), key=lambda r: (str(r["crit"]), str(r["value"]))):
            crit = result.get(str(row["crit"]))
            if crit is not None and str(row["value"]) not in crit.required:
                crit.required.append(str(row["value"]))
                crit.required_labels.append(row.get("label") or short(row["value"]))
        return result

    @cached_property
    def criteria_by_characteristic(self) -> dict[str, list[Criterion]]:
        result: dict[str, list[Criterion]] = {}
        for criterion in self.criteria.values():
            if criterion.characteristic:
                result.setdefault(criterion.characteristic, []).append(criterion)
        return result

    @cached_property
    def groups(self) -> dict[str, tuple[str, list[str]]]:
        groups: dict[str, tuple[str, list[str]]] = {}
        for row in self.store.select(sparql.GROUPS):
            kind = "any" if str(row["type"]).endswith("AnyOfGroup") else "all"
            groups.setdefault(str(row["group"]), (kind, []))[1].append(str(row["member"]))
        for _, members in groups.values():
            members.sort()
        return groups

    @cached_property
    def holders(self) -> dict[str, dict[str, Any]]:
        """Studies and statements with a criteria tree (crlm:hasEligibility), by IRI."""
        holders: dict[str, dict[str, Any]] = {}
        for row in self.store.select(sparql.HOLDERS):
            iri = str(row["holder"])
            entry = holders.setdefault(iri, {"iri": iri, "roots": [], "acronym": None, "fullLabel": None,
                                             "isStudy": bool(row.get("isStudy")), "isStatement": bool(row.get("isStatement"))})
            entry["acronym"] = first(entry["acronym"], row.get("acronym"))
            entry["fullLabel"] = first(entry["fullLabel"], row.get("label"))
            if str(row["root"]) not in entry["roots"]:
                entry["roots"].append(str(row["root"]))
        for entry in holders.values():
            entry["roots"].sort()
            entry["label"] = entry["acronym"] or entry["fullLabel"] or short(entry["iri"])
        return holders

    @cached_property
    def trials(self) -> list[dict[str, Any]]:
        return sorted((h for h in self.holders.values() if h["isStudy"]), key=lambda h: (h["label"], h["iri"]))

    @cached_property
    def outcomes(self) -> dict[str, list[dict[str, Any]]]:
        by_study: dict[str, dict[str, dict[str, Any]]] = {}
        for row in self.store.select(sparql.OUTCOMES):
            study, node = str(row["study"]), str(row["m"])
            entry = by_study.setdefault(study, {}).get(node)
            if entry is None:
                entry = by_study[study][node] = {
                    "id": short(node),
                    "kind": "measurement" if str(row["kind"]).endswith("OutcomeMeasurement") else short(row["kind"]),
                    "label": row.get("label"),
                    "endpoint": row.get("endpointLabel") or (short(row["endpoint"]) if "endpoint" in row else None),
                    "endpointClass": str(row["endpoint"]) if "endpoint" in row else None,
                    "arm": row.get("armLabel"), "comparator": row.get("comparatorLabel"), "population": row.get("population"),
                    "statistic": row.get("statistic"), "value": row.get("value"), "unit": row.get("unit"),
                    "timePointMonths": row.get("timePoint"), "ciLower": row.get("ciLower"), "ciUpper": row.get("ciUpper"),
                    "pValue": row.get("pValue"), "pValueComparator": row.get("pComparator"),
                    "source": row.get("docLabel"), "quote": row.get("quote"), "conflictsWith": [],
                }
            if entry["kind"] == "Comparison" and str(row["kind"]) != _COMPARISON:
                # a comparison's stated type (crlm:HazardRatio, ...) and its entailed crlm:Comparison come in an order
                # that depends on how the store was filled: the stated, more specific type wins, whatever the order
                entry["kind"] = short(row["kind"])
            for key, column in (("label", "label"), ("source", "docLabel"), ("quote", "quote"), ("arm", "armLabel"),
                                ("comparator", "comparatorLabel"), ("population", "population")):
                entry[key] = first(entry[key], row.get(column))
            if "conflict" in row and short(row["conflict"]) not in entry["conflictsWith"]:
                entry["conflictsWith"].append(short(row["conflict"]))
        return {s: sorted((_deterministic(e) for e in v.values()), key=lambda e: e["id"]) for s, v in by_study.items()}

    @cached_property
    def statements(self) -> list[dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for row in self.store.select(sparql.STATEMENTS):
            iri = str(row["s"])
            entry = result.get(iri)
            if entry is None:
                entry = result[iri] = {
                    "iri": iri, "id": short(iri),
                    "kind": "recommendation" if row.get("isRecommendation") else "evidence statement",
                    "label": row.get("label"), "text": row.get("text"), "settings": [],
                    "direction": row.get("directionLabel"), "directionClass": short(row["direction"]) if "direction" in row else None,
                    "level": row.get("level"), "gradingSystem": row.get("system"), "issuedBy": row.get("issuer"),
                    "source": row.get("docLabel"), "quote": row.get("quote"), "locator": row.get("locator"),
                    "supportedBy": [], "conflictsWith": [],
                }
            for key, column in (("label", "label"), ("text", "text"), ("source", "docLabel"), ("quote", "quote"),
                                ("level", "level"), ("issuedBy", "issuer"), ("locator", "locator")):
                entry[key] = first(entry[key], row.get(column))
            if "setting" in row and short(row["setting"]) not in entry["settings"]:
                entry["settings"].append(short(row["setting"]))
            if "conflict" in row and short(row["conflict"]) not in entry["conflictsWith"]:
                entry["conflictsWith"].append(short(row["conflict"]))
            if "support" in row:
                support = {"id": short(row["support"]), "label": row.get("supportLabel")}
                if support not in entry["supportedBy"]:
                    entry["supportedBy"].append(support)
        treatments = self.statement_treatments
        for iri, entry in result.items():
            for key in ("aboutTreatment", "cautionAgainst", "restrictsTreatment"):
                entry[key] = sorted(treatments.get(iri, {}).get(key, []))
        return sorted((_deterministic(e) for e in result.values()), key=lambda s: s["id"])

    @cached_property
    def statement_treatments(self) -> dict[str, dict[str, set[str]]]:
        result: dict[str, dict[str, set[str]]] = {}
        for row in self.store.select(sparql.STATEMENT_TREATMENTS):
            result.setdefault(str(row["s"]), {}).setdefault(short(row["property"]), set()).add(str(row["treatment"]))
        return result

    @cached_property
    def labels(self) -> dict[str, str]:
        """Labels of the treatment classes statements name."""
        result: dict[str, str] = {}
        for row in self.store.select(sparql.STATEMENT_TREATMENTS):
            if "treatmentLabel" in row:
                result[str(row["treatment"])] = first(result.get(str(row["treatment"])), row["treatmentLabel"])
        return result

    @cached_property
    def subclasses(self) -> dict[str, frozenset[str]]:
        """Every named class -> itself and all its subclasses (reflexive-transitive closure of rdfs:subClassOf)."""
        children: dict[str, set[str]] = {}
        for row in self.store.select(sparql.SUBCLASSES):
            children.setdefault(str(row["super"]), set()).add(str(row["sub"]))
        closure: dict[str, frozenset[str]] = {}

        def down(cls: str) -> frozenset[str]:
            if cls in closure:
                return closure[cls]
            seen, stack = {cls}, [cls]
            while stack:
                for child in children.get(stack.pop(), ()):
                    if child not in seen:
                        seen.add(child)
                        stack.append(child)
            closure[cls] = frozenset(seen)
            return closure[cls]

        for cls in list(children):
            down(cls)
        return closure

    def subclasses_of(self, cls: str) -> frozenset[str]:
        return self.subclasses.get(cls, frozenset({cls}))

    @cached_property
    def studies(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = {}
        for row in self.store.select(sparql.STUDIES):
            entry = result.setdefault(str(row["study"]), {"types": set(), "sampleSize": None, "randomised": None, "registryIds": set(),
                                                           "primaryEndpoints": {}})
            entry["types"].add(short(row["type"]))
            for key, column in (("sampleSize", "sampleSize"), ("randomised", "randomised")):
                if column in row:
                    entry[key] = max(entry[key] or 0, int(row[column]))
            if "registryId" in row:
                entry["registryIds"].add(str(row["registryId"]))
            if "primaryEndpoint" in row:
                entry["primaryEndpoints"][str(row["primaryEndpoint"])] = row.get("primaryEndpointLabel") or short(row["primaryEndpoint"])
        return result

    @cached_property
    def status_reports(self) -> dict[str, list[dict[str, Any]]]:
        result: dict[str, list[dict[str, Any]]] = {}
        for row in self.store.select(sparql.STUDY_STATUS_REPORTS):
            result.setdefault(str(row["study"]), []).append({"id": short(row["report"]), "status": str(row["status"]),
                                                             "source": row.get("docLabel"), "quote": row.get("quote"),
                                                             "locator": row.get("locator")})
        for reports in result.values():
            reports.sort(key=lambda r: r["id"])
        return result

    @cached_property
    def scores(self) -> dict[str, dict[str, Any]]:
        scores: dict[str, dict[str, Any]] = {}
        for row in self.store.select(sparql.SCORES):
            entry = scores.setdefault(str(row["score"]), {"label": None, "components": {}, "zones": {}, "source": None, "quote": None})
            for key, column in (("label", "label"), ("source", "docLabel"), ("quote", "quote")):
                entry[key] = first(entry[key], row.get(column))
            if "component" in row:
                characteristic = row.get("componentCharacteristic")
                entry["components"][str(row["component"])] = (int(row["points"]), str(characteristic) if characteristic else None,
                                                              row.get("componentLabel"))
            if "zone" in row:
                entry["zones"][str(row["zone"])] = (row.get("zoneLabel"), row.get("lower"), row.get("upper"))
        return scores

    @cached_property
    def sidedness_rules(self) -> dict[str, tuple[str, str | None, str | None]]:
        # errors propagate: an empty rule set would silently make every patient's sidedness unknown
        return {str(r["location"]): (str(r["sidedness"]), r.get("docLabel"), r.get("quote")) for r in self.store.select(sparql.SIDEDNESS)}

    @cached_property
    def flr_thresholds(self) -> dict[str, dict[str, Any]]:
        return {str(r["condition"]): {"threshold": r["threshold"], "source": r.get("docLabel"), "quote": r.get("quote")}
                for r in self.store.select(sparql.FLR_THRESHOLDS)}

    @cached_property
    def defined_classes(self) -> dict[str, list[tuple[str, str, Any]]]:
        """Patient classes defined by owl:hasValue or datatype facets, read from the ontology."""
        classes: dict[str, list[tuple[str, str, Any]]] = {}
        for row in self.store.select(sparql.DEFINED_CLASSES):
            prop = str(row["prop"])
            condition = (prop, "hasValue", row["hasValue"]) if "hasValue" in row else (prop, short(row["facet"]).rsplit("#", 1)[-1], row["limit"])
            classes.setdefault(short(row["class"]), []).append(condition)
        return classes

    def warm(self) -> None:
        """Read every cached structure now: no request builds one lazily, or races another to. On a store read
        from disk, the structures are kept beside it (``_SavedStructure``) and read back at the next start."""
        saved = _SavedStructure.for_store(self.store)
        if saved is not None and saved.load_into(self):
            return
        for name in _cached_names():
            getattr(self, name)
        if saved is not None:
            saved.save_from(self)


def _cached_names() -> list[str]:
    return [name for name, attribute in vars(GraphStructure).items() if isinstance(attribute, cached_property)]


class _SavedStructure:
    """The structures of an on-disk store (``store/persisted.py``), pickled beside it: reading 5 M quads' worth of
    rows into Python took 33 s at 100x the evidence, unpickling them takes seconds. The store's directory is named
    by a digest of the data files; the pickle's name adds a digest of the code that builds and reads the structures
    (this package, the store package, ``paths.py``) and of the Python version, so changed data or code never reads
    an old pickle. One that cannot be read is rebuilt."""

    def __init__(self, file: Path):
        self.file = file

    @classmethod
    def for_store(cls, store: Store) -> "_SavedStructure | None":
        path = store.capabilities.on_disk
        if path is None:
            return None
        digest = hashlib.sha256(f"{sys.version}|{pickle.HIGHEST_PROTOCOL}".encode())
        package = Path(__file__).resolve().parent
        sources = sorted(package.glob("*.py")) + sorted((package.parent / "store").glob("*.py")) + [package.parent / "paths.py"]
        for source in sources:
            digest.update(source.name.encode() + b"\0" + hashlib.sha256(source.read_bytes()).digest())
        return cls(Path(path).parent / f"structure-{digest.hexdigest()[:32]}.pickle")

    def load_into(self, structure: GraphStructure) -> bool:
        try:
            saved = pickle.loads(self.file.read_bytes())
        except FileNotFoundError:
            return False
        except Exception as exc:  # a truncated or foreign file: unpickling can fail in many ways
            log.warning("the saved graph structure %s cannot be read (%s): reading it from the store", self.file, exc)
            return False
        if not isinstance(saved, dict) or set(saved) != set(_cached_names()):
            log.warning("the saved graph structure %s is incomplete: reading it from the store", self.file)
            return False
        structure.__dict__.update(saved)
        return True

    def save_from(self, structure: GraphStructure) -> None:
        # one pickle for all: objects shared between structures (a Criterion in two indexes) stay shared
        data = pickle.dumps({name: structure.__dict__[name] for name in _cached_names()}, protocol=pickle.HIGHEST_PROTOCOL)
        tmp = self.file.with_name(f".{self.file.name}.{os.getpid()}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.file)  # never a half-written pickle under the real name
        except OSError as exc:  # a read-only store directory: read from the store again next time
            log.warning("cannot save the graph structure beside the store (%s)", exc)
            tmp.unlink(missing_ok=True)


FONG_SCORE = paths.CRLMD + "FongClinicalRiskScore"
TUMOUR_BURDEN_SCORE = paths.CRLMD + "TumourBurdenScore"
