"""The road network: public map data (OpenStreetMap-derived, ODbL) shared by every
organization, so not tenant data. Stored in the layout pgRouting expects (an edge table with
source, target, cost and reverse cost), and read once per process into an in-memory graph for
routing (tracking/roads/graph.py)."""

from __future__ import annotations

from django.contrib.gis.db import models as gis
from django.db import models

OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"


class RoadNetwork(models.Model):
    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=200)
    source = models.CharField(max_length=300, help_text="Where the data came from.")
    attribution = models.CharField(max_length=200, default=OSM_ATTRIBUTION)
    speeds_kmh = models.JSONField(default=dict, help_text="Speeds per road class used for costs.")
    node_count = models.PositiveIntegerField(default=0)
    edge_count = models.PositiveIntegerField(default=0)
    bbox = gis.PolygonField(srid=4326, null=True, blank=True)
    loaded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class RoadNode(models.Model):
    network = models.ForeignKey(RoadNetwork, on_delete=models.CASCADE, related_name="nodes")
    node_id = models.BigIntegerField()
    location = gis.PointField(srid=4326)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network", "node_id"], name="road_node_once"),
        ]

    def __str__(self) -> str:
        return f"node {self.node_id}"


class RoadEdge(models.Model):
    """A directed-or-not street segment between two nodes. `cost_s` is the travel time from
    source to target, `reverse_cost_s` from target to source (-1: one-way, not allowed)."""

    network = models.ForeignKey(RoadNetwork, on_delete=models.CASCADE, related_name="edges")
    source = models.BigIntegerField()
    target = models.BigIntegerField()
    length_m = models.FloatField()
    cost_s = models.FloatField()
    reverse_cost_s = models.FloatField()
    road_class = models.CharField(max_length=32)
    name = models.CharField(max_length=200, blank=True)
    osm_id = models.BigIntegerField(null=True, blank=True)
    geom = gis.LineStringField(srid=4326)

    class Meta:
        indexes = [
            models.Index(fields=["network", "source"]),
            models.Index(fields=["network", "target"]),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.road_class} {self.source}→{self.target}"
