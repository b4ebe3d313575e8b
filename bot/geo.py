"""Areas as GeoJSON polygons: checking their geometry and which one holds a point.

Pure functions, no I/O. A point is inside a polygon when it is inside its outer ring
and in none of its holes (ray casting, the even-odd rule per ring); a MultiPolygon
holds it when one of its polygons does. Districts have a few thousand vertices at
most and a pin is only tested against the areas whose bounding box holds it (a SQL
filter first), so this small function is enough: shapely would bring GEOS and a
compiled wheel for one predicate. Coordinates are GeoJSON's ``[longitude, latitude]``
(WGS 84); polygons crossing the antimeridian are not supported (none of ours does).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GEOMETRY_TYPES = ("Polygon", "MultiPolygon")
MIN_RING_POSITIONS = 4  # a triangle, closed: GeoJSON (RFC 7946, 3.1.6)

Ring = Sequence[Sequence[float]]
Polygon = Sequence[Ring]


@dataclass(frozen=True, slots=True)
class BoundingBox:
    """The smallest latitude/longitude box holding a geometry."""

    min_latitude: float
    min_longitude: float
    max_latitude: float
    max_longitude: float

    def contains(self, latitude: float, longitude: float) -> bool:
        """Whether the point lies in the box (edges included)."""
        return (
            self.min_latitude <= latitude <= self.max_latitude
            and self.min_longitude <= longitude <= self.max_longitude
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _ring_problems(ring: Any, where: str) -> list[str]:
    if not isinstance(ring, list):
        return [f"{where} must be a list of positions"]
    if len(ring) < MIN_RING_POSITIONS:
        return [f"{where} has {len(ring)} positions; a ring needs at least {MIN_RING_POSITIONS}"]
    problems = []
    for index, position in enumerate(ring, start=1):
        if (
            not isinstance(position, list)
            or len(position) not in (2, 3)
            or not all(_is_number(value) for value in position)
        ):
            problems.append(f"{where}, position {index}: must be [longitude, latitude]")
            continue
        longitude, latitude = position[0], position[1]
        if not -180 <= longitude <= 180:
            problems.append(f"{where}, position {index}: longitude {longitude} is not in -180..180")
        if not -90 <= latitude <= 90:
            problems.append(f"{where}, position {index}: latitude {latitude} is not in -90..90")
        if len(problems) >= 3:
            break  # a swapped file would list every vertex
    if not problems and ring[0][:2] != ring[-1][:2]:
        problems.append(f"{where} is not closed: its last position must repeat its first")
    return problems


def _polygon_problems(polygon: Any, where: str) -> list[str]:
    if not isinstance(polygon, list) or not polygon:
        return [f"{where} must be a non-empty list of rings"]
    problems = []
    for index, ring in enumerate(polygon, start=1):
        name = "outer ring" if index == 1 else f"hole {index - 1}"
        problems.extend(_ring_problems(ring, f"{where}{name}"))
    return problems


def geometry_problems(geometry: Any) -> list[str]:
    """What is wrong with a GeoJSON geometry for an area (empty when it is usable)."""
    if not isinstance(geometry, dict):
        return ["geometry must be a GeoJSON object"]
    kind = geometry.get("type")
    if kind not in GEOMETRY_TYPES:
        return [f"geometry type {kind!r} is not one of {', '.join(GEOMETRY_TYPES)}"]
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        return _polygon_problems(coordinates, "")
    if not isinstance(coordinates, list) or not coordinates:
        return ["a MultiPolygon needs a non-empty list of polygons"]
    problems = []
    for index, polygon in enumerate(coordinates, start=1):
        problems.extend(_polygon_problems(polygon, f"polygon {index}, "))
    return problems


def _polygons(geometry: dict[str, Any]) -> list[Polygon]:
    coordinates = geometry["coordinates"]
    return [coordinates] if geometry["type"] == "Polygon" else list(coordinates)


def bounding_box(geometry: dict[str, Any]) -> BoundingBox:
    """The bounding box of a valid Polygon or MultiPolygon (its outer rings)."""
    positions = [position for polygon in _polygons(geometry) for position in polygon[0]]
    longitudes = [position[0] for position in positions]
    latitudes = [position[1] for position in positions]
    return BoundingBox(min(latitudes), min(longitudes), max(latitudes), max(longitudes))


def _in_ring(ring: Ring, longitude: float, latitude: float) -> bool:
    """Ray casting: does a ray from the point towards +longitude cross the ring an odd
    number of times?"""
    inside = False
    previous = ring[-1]
    for current in ring:
        x1, y1, x2, y2 = previous[0], previous[1], current[0], current[1]
        if (y1 > latitude) != (y2 > latitude) and longitude < (x2 - x1) * (latitude - y1) / (
            y2 - y1
        ) + x1:
            inside = not inside
        previous = current
    return inside


def contains(geometry: dict[str, Any], latitude: float, longitude: float) -> bool:
    """Whether a valid Polygon or MultiPolygon holds the point (holes excluded)."""
    for polygon in _polygons(geometry):
        if _in_ring(polygon[0], longitude, latitude) and not any(
            _in_ring(hole, longitude, latitude) for hole in polygon[1:]
        ):
            return True
    return False
