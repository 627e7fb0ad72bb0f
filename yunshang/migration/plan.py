"""A migration plan: the validated survey, where each host goes, and the waves (pure data + JSON form).

The plan file is what ``yunshang migrate run`` executes; it carries the whole
survey so a run needs nothing else (besides clouds.yaml and the SSH key).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from yunshang.capacity import project_name
from yunshang.errors import Problem, SurveyInvalid
from yunshang.migration.survey import Survey, SurveyHost, survey_from_dicts
from yunshang.migration.waves import Wave, WaveOptions, plan_waves
from yunshang.model import DEFAULT_MIGRATION_HASH, MIGRATION_HASH_ALGORITHMS

PLAN_VERSION = 1


@dataclass(frozen=True)
class Destination:
    operator: str                # clouds.yaml cloud name == operator name
    project: str                 # dept-<department>
    contract: str = ""


@dataclass(frozen=True)
class MigrationPlan:
    survey: Survey
    options: WaveOptions
    not_before: dt.datetime
    destinations: tuple[tuple[str, Destination], ...]   # (hostname, destination), sorted
    waves: tuple[Wave, ...]
    hash_algorithm: str = DEFAULT_MIGRATION_HASH     # the catalog's (migration.yaml); a run's flag wins

    @property
    def plan_id(self) -> str:
        """Stable id of the plan's content: the state of a run belongs to one plan."""
        body = json.dumps(self.to_dict(include_id=False), sort_keys=True, default=str).encode()
        return hashlib.sha256(body).hexdigest()[:12]

    def destination(self, host: str) -> Destination:
        return dict(self.destinations)[host]

    def wave_of(self, host: str) -> Wave:
        for w in self.waves:
            if host in w.hosts:
                return w
        raise KeyError(host)

    def to_dict(self, include_id: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "version": PLAN_VERSION,
            "survey_file": self.survey.file,
            "not_before": self.not_before.isoformat(),
            "options": {**asdict(self.options), "conversion_hosts": list(self.options.conversion_hosts)},
            "hosts": [h.to_dict() for h in self.survey.hosts],
            "destinations": {h: asdict(d) for h, d in self.destinations},
            "waves": [{"number": w.number, "hosts": list(w.hosts), "conversion": dict(w.conversion),
                       "window": w.window, "starts_at": w.starts_at.isoformat()} for w in self.waves],
        }
        if self.hash_algorithm != DEFAULT_MIGRATION_HASH:    # absent = sha256: older plans keep their id
            d["hash_algorithm"] = self.hash_algorithm
        if include_id:
            d = {"plan_id": self.plan_id, **d}
        return d


def resolve_destinations(survey: Survey, catalog: Any | None, day: dt.date) -> tuple[tuple[str, Destination], ...]:
    """Each host's operator: its survey ``operator`` (checked against the department's valid
    contracts when a catalog is given) or the department's primary contract valid on ``day``."""
    problems: list[Problem] = []
    out: list[tuple[str, Destination]] = []
    for h in survey.hosts:
        dest = _resolve_one(h, catalog, day, survey.file, problems)
        if dest is not None:
            out.append((h.hostname, dest))
    if problems:
        raise SurveyInvalid(problems)
    return tuple(sorted(out))


def _resolve_one(h: SurveyHost, catalog: Any | None, day: dt.date, file: str, problems: list[Problem]) -> Destination | None:
    if catalog is None:
        if not h.operator:
            problems.append(Problem(file, "operator", f"{h.hostname}: no operator given and no catalog to find "
                                                      f"department {h.department!r}'s contract in", h.row))
            return None
        return Destination(operator=h.operator, project=project_name(h.department))
    try:
        dept = catalog.department(h.department)
    except KeyError:
        problems.append(Problem(file, "department", f"{h.hostname}: department {h.department!r} is not in the catalog", h.row))
        return None
    valid = [c for c in dept.contracts if c.valid_on(day)]
    if h.operator:
        match = [c for c in valid if c.provider == h.operator]
        if not match:
            problems.append(Problem(file, "operator", f"{h.hostname}: department {h.department!r} holds no contract "
                                                      f"valid on {day} with operator {h.operator!r}", h.row))
            return None
        contract = sorted(match, key=lambda c: (c.role != "primary", c.id))[0]
    else:
        primary = sorted((c for c in valid if c.role == "primary"), key=lambda c: c.id)
        if not primary:
            problems.append(Problem(file, "department", f"{h.hostname}: department {h.department!r} holds no primary "
                                                        f"contract valid on {day}", h.row))
            return None
        contract = primary[0]
    try:
        cloud = catalog.provider(contract.provider).cloud
    except KeyError:
        cloud = contract.provider
    return Destination(operator=cloud, project=project_name(h.department), contract=contract.id)


def build_plan(survey: Survey, options: WaveOptions, not_before: dt.datetime, catalog: Any | None = None) -> MigrationPlan:
    destinations = resolve_destinations(survey, catalog, not_before.date())
    waves = plan_waves(survey, options, not_before)
    algorithm = getattr(catalog, "migration_hash_algorithm", DEFAULT_MIGRATION_HASH) if catalog is not None \
        else DEFAULT_MIGRATION_HASH
    return MigrationPlan(survey=survey, options=options, not_before=not_before, destinations=destinations, waves=waves,
                         hash_algorithm=algorithm)


def plan_from_dict(d: dict[str, Any], file: str = "<plan>") -> MigrationPlan:
    """Rebuild a plan from its JSON form, re-validating the survey part."""
    try:
        if d.get("version") != PLAN_VERSION:
            raise ValueError(f"version {d.get('version')!r}, expected {PLAN_VERSION}")
        survey = survey_from_dicts(d["hosts"], d.get("survey_file", file))
        opts = d["options"]
        options = WaveOptions(max_hosts_per_wave=int(opts["max_hosts_per_wave"]),
                              max_hosts_per_conversion_host=int(opts["max_hosts_per_conversion_host"]),
                              conversion_hosts=tuple(opts["conversion_hosts"]),
                              wave_minutes=int(opts["wave_minutes"]))
        dests = tuple(sorted((h, Destination(**v)) for h, v in d["destinations"].items()))
        waves = tuple(Wave(number=int(w["number"]), hosts=tuple(w["hosts"]),
                           conversion=tuple(sorted(w["conversion"].items())), window=w["window"],
                           starts_at=dt.datetime.fromisoformat(w["starts_at"])) for w in d["waves"])
        not_before = dt.datetime.fromisoformat(d["not_before"])
        algorithm = d.get("hash_algorithm", DEFAULT_MIGRATION_HASH)
        if algorithm not in MIGRATION_HASH_ALGORITHMS:
            raise ValueError(f"hash_algorithm {str(algorithm)[:40]!r}, expected one of {' | '.join(MIGRATION_HASH_ALGORITHMS)}")
    except (KeyError, TypeError, ValueError) as exc:
        raise SurveyInvalid([Problem(file, "", f"not a migration plan ({type(exc).__name__}: {exc}); "
                                               f"make one with `yunshang migrate plan SURVEY -o json`")]) from None
    planned = {h for w in waves for h in w.hosts}
    names = {h.hostname for h in survey.hosts}
    if planned != names or set(dict(dests)) != names:
        raise SurveyInvalid([Problem(file, "waves", "waves/destinations do not cover exactly the plan's hosts")])
    return MigrationPlan(survey=survey, options=options, not_before=not_before, destinations=dests, waves=waves,
                         hash_algorithm=algorithm)
