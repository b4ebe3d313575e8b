"""Configuration as files: areas (GeoJSON), the service catalogue and the report state
table (YAML). One implementation for the bot and the command line.

Every import validates the whole file first (problems as ``file:line: reason``) and
changes nothing when anything is wrong; it then applies in the caller's unit of
work, so the changes, the reports moved to their areas, the roles granted or taken
and the audit entry commit together. ``apply=False`` computes the same summary
without writing: what the administrator confirms.
"""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from bot import geo
from bot.configfile import (
    IMPORT_ACTION,
    KINDS,
    ConfigFileError,
    ConfigProblem,
    ImportSummary,
    Kind,
    YamlDocument,
    audit_import,
)
from bot.i18n import Translator
from bot.notices import MenuKeeper, queue_role_notices
from bot.statetable import (
    DEFAULT_TABLE,
    DOCUMENT,
    StateTable,
    current_table,
    invalidate_state_tables,
    parse_state_table,
    render_state_table,
)
from bot.usecases.opportunity_file import export_opportunities, import_opportunities
from storage.db import UnitOfWork
from storage.repositories.config import ManagerRole
from storage.repositories.staff import MANAGER

CODE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
MAX_NAME = 100
MAX_TARGET_DAYS = 365
MAX_RADIUS_M = 5000
REPORT_PAGE = 5000


def detect_kind(source: str, *, caption: str | None = None) -> Kind | None:
    """Which configuration file this is: by caption, else by its top-level shape.

    None for anything else (a flow has ``id``/``steps``, and is not ours).
    """
    word = (caption or "").strip().lower()
    for kind in KINDS:
        if word == kind:
            return kind
    text = source.lstrip("\ufeff").lstrip()
    data: Any = None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if data is None:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    if not isinstance(data, dict):
        return None
    if data.get("type") == "FeatureCollection":
        return "areas"
    if "steps" in data or "flow" in data:
        return None
    if "services" in data:
        return "catalogue"
    if "opportunities" in data:
        return "opportunities"
    if DOCUMENT in data:
        return "statuses"
    return None


# ---------------------------------------------------------------------------- areas


@dataclass(frozen=True, slots=True, kw_only=True)
class AreaSpec:
    """An area as the file describes it."""

    code: str
    names: dict[str, str]
    geometry: dict[str, Any]
    box: geo.BoundingBox
    position: int
    active: bool


def _feature_lines(text: str) -> list[int] | None:
    """The line where each feature of a FeatureCollection starts (None if not found).

    The standard decoder reads each value from its offset; only the top-level object
    and the features list are walked by hand.
    """
    decoder = json.JSONDecoder()
    space = re.compile(r"\s*")

    def skip(index: int) -> int:
        found = space.match(text, index)
        return found.end() if found else index

    try:
        index = skip(0)
        if text[index] != "{":
            return None
        index = skip(index + 1)
        while text[index] != "}":
            key, index = decoder.raw_decode(text, index)
            index = skip(index)
            if text[index] != ":":
                return None
            index = skip(index + 1)
            if key == "features" and text[index] == "[":
                starts = []
                index = skip(index + 1)
                while text[index] != "]":
                    starts.append(index)
                    _, index = decoder.raw_decode(text, index)
                    index = skip(index)
                    if text[index] == ",":
                        index = skip(index + 1)
                return [text.count("\n", 0, start) + 1 for start in starts]
            _, index = decoder.raw_decode(text, index)
            index = skip(index)
            if text[index] == ",":
                index = skip(index + 1)
    except (ValueError, IndexError):
        return None
    return None


def _names(properties: Mapping[str, Any], languages: Sequence[str], problem: Any) -> dict[str, str]:
    """``names: {lang: name}`` or ``name_<lang>`` properties, every language required."""
    names: dict[str, Any] = {}
    given = properties.get("names")
    if isinstance(given, dict):
        names.update(given)
    elif given is not None:
        problem("'names' must map a language to a name")
    for language in languages:
        if f"name_{language}" in properties:
            names[language] = properties[f"name_{language}"]
    for language in languages:
        value = names.get(language)
        if not isinstance(value, str) or not value.strip():
            problem(f"no name in '{language}' (name_{language}, or names.{language})")
        elif len(value) > MAX_NAME:
            problem(f"the '{language}' name is longer than {MAX_NAME} characters")
    return {language: str(names.get(language, "")).strip() for language in languages}


def parse_areas(source: str, *, filename: str, languages: Sequence[str]) -> list[AreaSpec]:
    """Validate a GeoJSON FeatureCollection of areas; raises ConfigFileError."""
    text = source.lstrip("\ufeff")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigFileError(
            [ConfigProblem(filename, error.lineno, f"not valid JSON: {error.msg}")]
        ) from None
    features = data.get("features") if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(features, list)
    ):
        message = "an areas file is a GeoJSON FeatureCollection with a list of features"
        raise ConfigFileError([ConfigProblem(filename, 1, message)])
    if not features:
        raise ConfigFileError([ConfigProblem(filename, 1, "the collection has no features")])
    lines = _feature_lines(text)
    if lines is None or len(lines) != len(features):
        lines = None
    problems: list[ConfigProblem] = []
    specs: list[AreaSpec] = []
    first_seen: dict[str, int] = {}
    for index, feature in enumerate(features):
        line = lines[index] if lines else None
        properties = feature.get("properties") if isinstance(feature, dict) else None
        raw_code = properties.get("code") if isinstance(properties, dict) else None
        label = f"feature {index + 1}" + (f" ({raw_code})" if isinstance(raw_code, str) else "")
        before = len(problems)

        def problem(message: str, line: int | None = line, label: str = label) -> None:
            problems.append(ConfigProblem(filename, line, f"{label}: {message}"))

        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problem("is not a GeoJSON Feature")
            continue
        if not isinstance(properties, dict):
            problem("has no properties (code, name_en, name_fr...)")
            continue
        if not isinstance(raw_code, str) or not CODE.fullmatch(raw_code):
            problem("'code' must be 1 to 64 lowercase letters, digits, '-' or '_'")
        elif raw_code in first_seen:
            problem(f"code '{raw_code}' is already used by feature {first_seen[raw_code]}")
        else:
            first_seen[raw_code] = index + 1
        names = _names(properties, languages, problem)
        position = properties.get("position", index)
        if not isinstance(position, int) or isinstance(position, bool):
            problem("'position' must be a whole number")
        active = properties.get("active", True)
        if not isinstance(active, bool):
            problem("'active' must be true or false")
        geometry = feature.get("geometry")
        for message in geo.geometry_problems(geometry):
            problem(message)
        if len(problems) == before:
            assert isinstance(geometry, dict) and isinstance(raw_code, str)
            clean = {"type": geometry["type"], "coordinates": geometry["coordinates"]}
            specs.append(
                AreaSpec(
                    code=raw_code,
                    names=names,
                    geometry=clean,
                    box=geo.bounding_box(clean),
                    position=int(position),
                    active=active,
                )
            )
    if problems:
        raise ConfigFileError(problems)
    return specs


def _first_holding(areas: Sequence[tuple[Any, AreaSpec]], latitude: float, longitude: float) -> Any:
    for key, spec in areas:
        if spec.box.contains(latitude, longitude) and geo.contains(
            spec.geometry, latitude, longitude
        ):
            return key
    return None


async def area_of_point(uow: UnitOfWork, latitude: float, longitude: float) -> int | None:
    """The active area whose polygon holds the point (the first by position), if any.

    SQL narrows the areas to those whose bounding box holds the point; the polygon
    test decides.
    """
    for area in await uow.repos.areas.boxes_holding(latitude, longitude):
        if geo.contains(area.geometry, latitude, longitude):
            return area.id
    return None


async def import_areas(
    uow: UnitOfWork,
    source: str,
    *,
    filename: str,
    languages: Sequence[str],
    actor: str,
    now: datetime,
    apply: bool = True,
) -> ImportSummary:
    """Replace the areas by a GeoJSON file's, then move every pinned report to its area.

    Areas missing from the file are deactivated, not deleted. Raises ConfigFileError.
    """
    specs = parse_areas(source, filename=filename, languages=languages)
    repos = uow.repos
    current = {area.code: area for area in await repos.areas.all()}
    created, updated, unchanged = [], [], 0
    for spec in specs:
        old = current.get(spec.code)
        if old is None:
            created.append(spec.code)
        elif (old.names, old.geometry, old.position, old.active) != (
            spec.names,
            spec.geometry,
            spec.position,
            spec.active,
        ):
            updated.append(spec.code)
        else:
            unchanged += 1
    listed = {spec.code for spec in specs}
    deactivated = [code for code, area in current.items() if area.active and code not in listed]
    ids = {area.id: code for code, area in current.items()}
    if apply:
        for spec in specs:
            box = spec.box
            await repos.areas.upsert(
                code=spec.code,
                names=spec.names,
                geometry=spec.geometry,
                box=(box.min_latitude, box.min_longitude, box.max_latitude, box.max_longitude),
                position=spec.position,
                active=spec.active,
                now=now,
            )
        await repos.areas.deactivate_except(sorted(listed), now=now)
    # The areas in force afterwards, in the order a new report would try them.
    after = [spec for spec in specs if spec.active]
    after.sort(key=lambda spec: spec.position)
    moves = await _area_moves(uow, [(spec.code, spec) for spec in after], ids)
    if apply:
        new_ids = {area.code: area.id for area in await repos.areas.all()}
        for code, report_ids in moves.items():
            await repos.areas.assign_reports(
                None if code is None else new_ids[code], sorted(report_ids)
            )
    summary = ImportSummary(
        kind="areas",
        created=tuple(created),
        updated=tuple(updated),
        deactivated=tuple(deactivated),
        unchanged=unchanged,
        reports_moved=sum(len(report_ids) for report_ids in moves.values()),
    )
    if apply:
        await audit_import(uow, summary, actor=actor, filename=filename, now=now)
    return summary


async def _area_moves(
    uow: UnitOfWork, areas: Sequence[tuple[str, AreaSpec]], codes_by_id: Mapping[int, str]
) -> dict[str | None, list[int]]:
    """The pinned reports whose area changes, by the code of their new area."""
    moves: dict[str | None, list[int]] = defaultdict(list)
    after_id = 0
    while True:
        page = await uow.repos.areas.pinned_reports(after_id=after_id, limit=REPORT_PAGE)
        if not page:
            return dict(moves)
        for report in page:
            new = _first_holding(areas, report.latitude, report.longitude)
            old = None if report.area_id is None else codes_by_id.get(report.area_id)
            if new != old:
                moves[new].append(report.id)
        after_id = page[-1].id


async def export_areas(uow: UnitOfWork, *, languages: Sequence[str]) -> str:
    """Every area (inactive ones too) as a GeoJSON FeatureCollection."""
    features = []
    for area in await uow.repos.areas.all():
        properties: dict[str, Any] = {"code": area.code}
        for language in languages:
            properties[f"name_{language}"] = area.names.get(language, "")
        properties.update(position=area.position, active=area.active)
        features.append({"type": "Feature", "properties": properties, "geometry": area.geometry})
    collection = {"type": "FeatureCollection", "features": features}
    # One feature a line block: diffs and error lines stay readable.
    body = ",\n".join(json.dumps(feature, ensure_ascii=False) for feature in features)
    if not features:
        return json.dumps(collection) + "\n"
    return '{"type": "FeatureCollection", "features": [\n' + body + "\n]}\n"


# ------------------------------------------------------------------------ catalogue


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSpec:
    """A service as the catalogue file describes it."""

    code: str
    names: dict[str, str]
    active: bool
    position: int
    managers: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CategorySpec:
    """A category as the catalogue file describes it."""

    code: str
    service: str
    names: dict[str, str]
    target_days: int
    radius_m: int
    open311_code: str | None
    active: bool
    position: int


@dataclass(slots=True)
class _Catalogue:
    services: list[ServiceSpec] = field(default_factory=list)
    categories: list[CategorySpec] = field(default_factory=list)


SERVICE_KEYS = ("code", "names", "active", "managers")
CATEGORY_KEYS = ("code", "service", "names", "target_days", "radius_m", "open311_code", "active")


def _whole(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _check_names(
    document: YamlDocument, path: tuple[str | int, ...], raw: Any, languages: Sequence[str]
) -> dict[str, str]:
    if not isinstance(raw, dict):
        what = "missing 'names'" if raw is None else "'names' must map each language to a name"
        document.add(path, what)
        return {}
    for language in raw:
        if language not in languages:
            document.add((*path, language), f"unknown language '{language}'", key=True)
    for language in languages:
        value = raw.get(language)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
            document.add(path, f"needs a name in '{language}' (1 to {MAX_NAME} characters)")
    return {language: str(raw.get(language, "")).strip() for language in languages}


def _check_keys(
    document: YamlDocument, path: tuple[str | int, ...], raw: dict[str, Any], keys: Sequence[str]
) -> None:
    for key in raw:
        if key not in keys:
            document.add((*path, key), f"unknown key '{key}'", key=True)


def _check_code(
    document: YamlDocument, path: tuple[str | int, ...], raw: Any, seen: dict[str, int], what: str
) -> str | None:
    if not isinstance(raw, str) or not CODE.fullmatch(raw):
        document.add(path, f"a {what} code is 1 to 64 lowercase letters, digits, '-' or '_'")
        return None
    if raw in seen:
        document.add(path, f"{what} '{raw}' is listed twice (first at line {seen[raw]})")
        return None
    seen[raw] = document.line(path)
    return raw


def parse_catalogue(source: str, *, filename: str, languages: Sequence[str]) -> _Catalogue:
    """Validate a catalogue file; raises ConfigFileError with every problem."""
    document = YamlDocument(source, filename)
    data = document.data
    document.raise_if_problems()
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        document.add((), "a catalogue is a mapping with a list of 'services' and of 'categories'")
        document.raise_if_problems()
    _check_keys(document, (), data, ("services", "categories"))
    catalogue = _Catalogue()
    seen: dict[str, int] = {}
    for index, raw in enumerate(data["services"]):
        path: tuple[str | int, ...] = ("services", index)
        if not isinstance(raw, dict):
            document.add(path, "a service is a mapping of " + ", ".join(SERVICE_KEYS))
            continue
        _check_keys(document, path, raw, SERVICE_KEYS)
        code = _check_code(document, (*path, "code"), raw.get("code"), seen, "service")
        names = _check_names(document, (*path, "names"), raw.get("names"), languages)
        active = raw.get("active", True)
        if not isinstance(active, bool):
            document.add((*path, "active"), "'active' must be true or false")
        managers = raw.get("managers", [])
        if not isinstance(managers, list) or not all(_whole(m, 1, 2**53) for m in managers):
            document.add((*path, "managers"), "'managers' is a list of Telegram user ids")
            managers = []
        if code is not None:
            catalogue.services.append(
                ServiceSpec(
                    code=code,
                    names=names,
                    active=active is True,
                    position=index,
                    managers=tuple(sorted(set(managers))),
                )
            )
    categories = data.get("categories", [])
    if not isinstance(categories, list):
        document.add(("categories",), "'categories' must be a list")
        categories = []
    seen = {}
    for index, raw in enumerate(categories):
        path = ("categories", index)
        if not isinstance(raw, dict):
            document.add(path, "a category is a mapping of " + ", ".join(CATEGORY_KEYS))
            continue
        _check_keys(document, path, raw, CATEGORY_KEYS)
        code = _check_code(document, (*path, "code"), raw.get("code"), seen, "category")
        names = _check_names(document, (*path, "names"), raw.get("names"), languages)
        service = raw.get("service")
        if not any(spec.code == service for spec in catalogue.services):
            document.add((*path, "service"), "'service' must name a service of this file")
        target_days = raw.get("target_days", 10)
        if not _whole(target_days, 1, MAX_TARGET_DAYS):
            document.add((*path, "target_days"), f"'target_days' is 1 to {MAX_TARGET_DAYS} days")
        radius_m = raw.get("radius_m", 50)
        if not _whole(radius_m, 0, MAX_RADIUS_M):
            document.add((*path, "radius_m"), f"'radius_m' is 0 to {MAX_RADIUS_M} metres")
        open311 = raw.get("open311_code")
        if isinstance(open311, int) and not isinstance(open311, bool):
            document.add((*path, "open311_code"), "put the Open311 code in quotes: it is text")
        elif open311 is not None and (not isinstance(open311, str) or len(open311) > 64):
            document.add((*path, "open311_code"), "'open311_code' is text of at most 64 characters")
        active = raw.get("active", True)
        if not isinstance(active, bool):
            document.add((*path, "active"), "'active' must be true or false")
        elif active and any(
            spec.code == service and not spec.active for spec in catalogue.services
        ):
            document.add((*path, "active"), f"an active category of inactive service '{service}'")
        if code is not None and isinstance(service, str):
            catalogue.categories.append(
                CategorySpec(
                    code=code,
                    service=service,
                    names=names,
                    target_days=int(target_days) if _whole(target_days, 1, 10**6) else 10,
                    radius_m=int(radius_m) if _whole(radius_m, 0, 10**6) else 50,
                    open311_code=open311 if isinstance(open311, str) else None,
                    active=active is True,
                    position=index,
                )
            )
    document.raise_if_problems()
    return catalogue


async def import_catalogue(
    uow: UnitOfWork,
    source: str,
    *,
    filename: str,
    languages: Sequence[str],
    actor: str,
    now: datetime,
    apply: bool = True,
    translator: Translator | None = None,
    menus: MenuKeeper | None = None,
) -> ImportSummary:
    """Make the services, categories and manager roles those of a catalogue file.

    Upserts by code. A service or category missing from the file is deleted when
    nothing refers to it, deactivated otherwise (reports keep their category).
    Managers are matched to each listed service's ``managers`` (Telegram ids; people
    who never wrote to the bot are registered, as ``/grant`` does); every grant and
    revocation is audited, and with a ``translator`` each person whose roles changed is
    told what they now are (and with ``menus`` gets the command menu that goes with
    it). Raises ConfigFileError.
    """
    catalogue = parse_catalogue(source, filename=filename, languages=languages)
    repos = uow.repos
    services = {row.code: row for row in await repos.config.services()}
    categories = {row.code: row for row in await repos.config.categories()}
    created: list[str] = []
    updated: list[str] = []
    deactivated: list[str] = []
    deleted: list[str] = []
    unchanged = 0
    service_ids: dict[str, int] = {}
    for spec in catalogue.services:
        values = {
            "code": spec.code,
            "names": spec.names,
            "active": spec.active,
            "position": spec.position,
        }
        old = services.get(spec.code)
        if old is None:
            created.append(f"service:{spec.code}")
        elif (old.names, old.active, old.position) != (spec.names, spec.active, spec.position):
            updated.append(f"service:{spec.code}")
        else:
            unchanged += 1
        if apply:
            service_ids[spec.code] = await repos.config.save_service(
                None if old is None else old.id, values
            )
        elif old is not None:
            service_ids[spec.code] = old.id
    for category in catalogue.categories:
        old_category = categories.get(category.code)
        wanted = {
            "code": category.code,
            "names": category.names,
            "target_days": category.target_days,
            "radius_m": category.radius_m,
            "open311_code": category.open311_code,
            "active": category.active,
            "position": category.position,
        }
        old_service_code = next(
            (s.code for s in services.values() if old_category and s.id == old_category.service_id),
            None,
        )
        if old_category is None:
            created.append(f"category:{category.code}")
        elif old_service_code != category.service or any(
            getattr(old_category, key) != value for key, value in wanted.items()
        ):
            updated.append(f"category:{category.code}")
        else:
            unchanged += 1
        if apply:
            await repos.config.save_category(
                None if old_category is None else old_category.id,
                {**wanted, "service_id": service_ids[category.service]},
            )
    listed_categories = {category.code for category in catalogue.categories}
    kept_for: set[int] = set()  # services a dropped but still referenced category keeps
    for code, row in categories.items():
        if code in listed_categories:
            continue
        if await repos.config.category_referenced(row.id):
            kept_for.add(row.service_id)
            if row.active:
                deactivated.append(f"category:{code}")
                if apply:
                    await repos.config.save_category(row.id, {"active": False})
        else:
            deleted.append(f"category:{code}")
            if apply:
                await repos.config.delete_category(row.id)
    roles = await repos.config.manager_roles()
    listed_services = {spec.code for spec in catalogue.services}
    revoked = 0
    changed: set[int] = set()  # people whose roles the import changes
    for code, service_row in services.items():
        if code in listed_services:
            continue
        if service_row.id in kept_for or await repos.config.service_referenced(service_row.id):
            if service_row.active:
                deactivated.append(f"service:{code}")
                if apply:
                    await repos.config.save_service(service_row.id, {"active": False})
            continue
        deleted.append(f"service:{code}")
        for role in roles:
            if role.service_id == service_row.id:
                revoked += 1
                changed.add(role.citizen_id)
                if apply:
                    await _audit_role(
                        uow, "role.revoke", role.citizen_id, code, actor=actor, now=now
                    )
        if apply:
            await repos.config.delete_service(service_row.id)
    granted, revoked_listed = await _match_managers(
        uow,
        catalogue.services,
        service_ids,
        roles,
        language=languages[0],
        actor=actor,
        now=now,
        apply=apply,
        changed=changed,
    )
    if apply and translator is not None:
        await queue_role_notices(uow, translator, changed, now=now, menus=menus)
    summary = ImportSummary(
        kind="catalogue",
        created=tuple(created),
        updated=tuple(updated),
        deactivated=tuple(deactivated),
        deleted=tuple(deleted),
        unchanged=unchanged,
        granted=granted,
        revoked=revoked + revoked_listed,
    )
    if apply:
        await audit_import(uow, summary, actor=actor, filename=filename, now=now)
    return summary


async def _match_managers(
    uow: UnitOfWork,
    services: Sequence[ServiceSpec],
    service_ids: Mapping[str, int],
    roles: Sequence[ManagerRole],
    *,
    language: str,
    actor: str,
    now: datetime,
    apply: bool,
    changed: set[int],
) -> tuple[int, int]:
    """Grant and revoke manager roles so each listed service has the file's managers;
    adds to ``changed`` whom it granted or revoked a role (when it applies them)."""
    repos = uow.repos
    granted = revoked = 0
    for spec in services:
        service_id = service_ids.get(spec.code)
        held = {
            role.telegram_id: role.citizen_id
            for role in roles
            if service_id is not None and role.service_id == service_id
        }
        for telegram_id in spec.managers:
            if telegram_id in held:
                continue
            granted += 1
            if not apply:
                continue
            assert service_id is not None
            person = await repos.citizens.by_telegram_id(telegram_id)
            if person is None:
                person, _ = await repos.citizens.ensure(
                    telegram_id=telegram_id,
                    language=language,
                    first_name=None,
                    username=None,
                    now=now,
                )
            await repos.staff.grant(person.id, MANAGER, service_id=service_id, by=actor, now=now)
            await _audit_role(uow, "role.grant", person.id, spec.code, actor=actor, now=now)
            changed.add(person.id)
        for held_id, citizen_id in held.items():
            # An erased manager has no Telegram id to list: the file says nothing of them.
            if held_id is None or held_id in spec.managers:
                continue
            revoked += 1
            if apply and service_id is not None:
                await repos.config.revoke_manager(citizen_id, service_id)
                await _audit_role(uow, "role.revoke", citizen_id, spec.code, actor=actor, now=now)
                changed.add(citizen_id)
    return granted, revoked


async def _audit_role(
    uow: UnitOfWork, action: str, citizen_id: int, service: str, *, actor: str, now: datetime
) -> None:
    person = await uow.repos.citizens.by_id(citizen_id)
    await uow.repos.staff.audit(
        actor=actor,
        action=action,
        subject=person.pseudonym if person else str(citizen_id),
        details={"role": MANAGER, "service": service, "via": IMPORT_ACTION},
        now=now,
    )


async def export_catalogue(uow: UnitOfWork) -> str:
    """The whole catalogue (inactive entries too) as a YAML catalogue file."""
    repos = uow.repos
    services = await repos.config.services()
    codes = {row.id: row.code for row in services}
    managers: dict[int, list[int]] = defaultdict(list)
    for role in await repos.config.manager_roles():
        if role.telegram_id is not None:
            managers[role.service_id].append(role.telegram_id)
    document: dict[str, Any] = {
        "services": [
            {
                "code": row.code,
                "names": row.names,
                "active": row.active,
                "managers": sorted(managers.get(row.id, [])),
            }
            for row in services
        ],
        "categories": [
            {
                "code": row.code,
                "service": codes[row.service_id],
                "names": row.names,
                "target_days": row.target_days,
                "radius_m": row.radius_m,
                "open311_code": row.open311_code,
                "active": row.active,
            }
            for row in await repos.config.categories()
        ],
    }
    header = (
        "# The service catalogue: services (with their managers' Telegram user ids) and\n"
        "# the categories citizens report, in display order. Import it back with\n"
        "# `citizenbot config import catalogue FILE` or by sending it to the bot.\n"
    )
    return header + yaml.safe_dump(
        document, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )


# ---------------------------------------------------------------------- state table


async def import_statuses(
    uow: UnitOfWork,
    source: str,
    *,
    filename: str,
    languages: Sequence[str],
    actor: str,
    now: datetime,
    apply: bool = True,
    translator: Translator | None = None,
) -> ImportSummary:
    """Store a new report state table (kept as written, comments included).

    With ``translator``, a label equal to the catalogue's counts as no change.
    Raises ConfigFileError.
    """
    table = parse_state_table(source, filename=filename, languages=languages)
    current = await current_table(uow)

    def seen(rules: StateTable, code: str) -> tuple[Any, ...]:
        """A status as people meet it: labels as shown, not as written."""
        rule = rules.rules[code]
        labels = tuple(
            rules.label(translator, language, code) if translator else rule.labels.get(language)
            for language in languages
        )
        return labels, rule.offered, rule.note, rule.to

    updated = tuple(code for code in table.rules if seen(table, code) != seen(current, code))
    revision = None
    if apply:
        revision = await uow.repos.config.save_document(DOCUMENT, source, author=actor, now=now)
        invalidate_state_tables()
    summary = ImportSummary(
        kind="statuses",
        updated=updated,
        unchanged=len(table.rules) - len(updated),
        revision=revision,
    )
    if apply:
        await audit_import(uow, summary, actor=actor, filename=filename, now=now)
    return summary


async def export_statuses(
    uow: UnitOfWork, *, translator: Translator, languages: Sequence[str]
) -> str:
    """The state table in force: the stored document as written, else the built-in one."""
    stored = await uow.repos.config.document(DOCUMENT)
    if stored is not None:
        return stored.source
    return render_state_table(DEFAULT_TABLE, translator=translator, languages=languages)


# --------------------------------------------------------------------------- common


async def import_file(
    uow: UnitOfWork,
    kind: Kind,
    source: str,
    *,
    filename: str,
    languages: Sequence[str],
    actor: str,
    now: datetime,
    apply: bool = True,
    translator: Translator | None = None,
    timezone: str = "UTC",
    menus: MenuKeeper | None = None,
) -> ImportSummary:
    """Import a configuration file of the given kind (see the import_* functions).

    ``timezone`` (the administration's) reads and writes the shifts' local times;
    ``menus`` keeps the command menus of managers the catalogue changes.
    """
    if kind == "opportunities":
        if translator is None:
            raise ValueError("importing shifts needs the translator: volunteers are told")
        return await import_opportunities(
            uow,
            source,
            filename=filename,
            translator=translator,
            zone=ZoneInfo(timezone),
            actor=actor,
            now=now,
            apply=apply,
        )
    if kind in ("statuses", "catalogue"):
        importer = (
            import_statuses
            if kind == "statuses"
            else functools.partial(import_catalogue, menus=menus)
        )
        return await importer(
            uow,
            source,
            filename=filename,
            languages=languages,
            actor=actor,
            now=now,
            apply=apply,
            translator=translator,
        )
    return await import_areas(
        uow, source, filename=filename, languages=languages, actor=actor, now=now, apply=apply
    )


async def export_file(
    uow: UnitOfWork,
    kind: Kind,
    *,
    translator: Translator,
    languages: Sequence[str],
    timezone: str = "UTC",
    now: datetime | None = None,
) -> str:
    """The configuration of the given kind as the file an administrator edits."""
    if kind == "opportunities":
        return await export_opportunities(
            uow, zone=ZoneInfo(timezone), now=now or datetime.now(UTC)
        )
    if kind == "areas":
        return await export_areas(uow, languages=languages)
    if kind == "catalogue":
        return await export_catalogue(uow)
    return await export_statuses(uow, translator=translator, languages=languages)
