"""Storing a road network (idempotent: a re-import replaces the network's nodes and edges in one
transaction) and the speeds that turn lengths into travel times."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib.gis.geos import Polygon
from django.db import connection, transaction
from django.utils import timezone

from tracking.models import RoadNetwork
from tracking.roads.readers import EdgeRow, edge_costs
from tracking.roads.routing import forget_networks


def road_speeds() -> dict[str, float]:
    """Urban speeds per road class (km/h), overridable with the ROAD_SPEEDS_KMH setting."""
    return {**settings.ROAD_SPEEDS_KMH}


def network_store(
    *,
    slug: str,
    name: str,
    source: str,
    nodes: dict[int, tuple[float, float]],
    edges: list[EdgeRow],
    progress: Callable[[int], None] | None = None,
) -> RoadNetwork:
    speeds = road_speeds()
    lons = [lon for lon, _lat in nodes.values()]
    lats = [lat for _lon, lat in nodes.values()]
    with transaction.atomic():
        network, _ = RoadNetwork.objects.update_or_create(
            slug=slug, defaults={"name": name, "source": source, "speeds_kmh": speeds}
        )
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM tracking_roadedge WHERE network_id = %s", [network.pk])
            cursor.execute("DELETE FROM tracking_roadnode WHERE network_id = %s", [network.pk])
            raw = cursor.cursor  # psycopg's own cursor, for COPY
            with raw.copy(
                "COPY tracking_roadnode (network_id, node_id, location) FROM STDIN"
            ) as copy:
                for node_id, (lon, lat) in nodes.items():
                    copy.write_row((network.pk, node_id, f"SRID=4326;POINT({lon} {lat})"))
            with raw.copy(
                "COPY tracking_roadedge (network_id, source, target, length_m, cost_s, "
                "reverse_cost_s, road_class, name, osm_id, geom) FROM STDIN"
            ) as copy:
                for index, edge in enumerate(edges, start=1):
                    cost, reverse = edge_costs(edge, speeds)
                    line = ", ".join(f"{lon} {lat}" for lon, lat in edge.coords)
                    copy.write_row(
                        (
                            network.pk,
                            edge.source,
                            edge.target,
                            edge.length_m,
                            cost,
                            reverse,
                            edge.road_class,
                            edge.name,
                            edge.osm_id,
                            f"SRID=4326;LINESTRING({line})",
                        )
                    )
                    if progress is not None and index % 1000 == 0:
                        progress(1000)
        if progress is not None:
            progress(len(edges) % 1000)
        network.node_count = len(nodes)
        network.edge_count = len(edges)
        network.bbox = (
            Polygon.from_bbox((min(lons), min(lats), max(lons), max(lats))) if lons else None
        )
        if network.bbox is not None:
            network.bbox.srid = 4326
        network.loaded_at = timezone.now()
        network.save()
        transaction.on_commit(forget_networks)  # this process routes on it at once
    forget_networks()
    return network
