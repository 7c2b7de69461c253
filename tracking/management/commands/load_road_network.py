"""`manage.py load_road_network --demo coquimbo` or `--osm FILE.osm.pbf --name SLUG`."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tracking.models import RoadNetwork
from tracking.roads import sources
from tracking.roads.readers import read_aequilibrae, read_osm
from tracking.roads.services import network_store

DEMOS = {"coquimbo": "Coquimbo – La Serena (Chile)"}


class Command(BaseCommand):
    help = (
        "Load a road network into PostGIS (idempotent: replaces the network of that name). "
        "Map data © OpenStreetMap contributors, ODbL."
    )

    def add_arguments(self, parser):
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--demo", choices=sorted(DEMOS), help="A bundled demo city.")
        source.add_argument("--osm", help="An OpenStreetMap extract (.osm.pbf or .osm).")
        parser.add_argument("--name", help="Slug for an --osm network (default: file name).")
        parser.add_argument(
            "--if-missing",
            action="store_true",
            help="Do nothing when the network is already loaded.",
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        started = time.perf_counter()
        if options["demo"]:
            slug, title = options["demo"], DEMOS[options["demo"]]
        else:
            path = Path(options["osm"])
            if not path.is_file():
                raise CommandError(f"No such file: {path}")
            slug = options["name"] or path.name.split(".")[0].lower()
            title = options["name"] or path.name
        if (
            options["if_missing"]
            and RoadNetwork.objects.filter(slug=slug, loaded_at__isnull=False).exists()
        ):
            self.stdout.write(f"{slug}: already loaded")
            return
        try:
            if options["demo"]:
                database = sources.coquimbo_database()
                nodes, edges = read_aequilibrae(database)
                origin = f"{sources.COQUIMBO_WHEEL} {sources.COQUIMBO_MEMBER}"
            else:
                nodes, edges = read_osm(path)
                origin = path.name
        except sources.SourceError as exc:
            raise CommandError(str(exc)) from exc
        except (OSError, RuntimeError, ValueError) as exc:
            raise CommandError(f"Could not read the road data: {exc}") from exc
        if not edges:
            raise CommandError("No drivable roads in that data.")
        with tqdm(total=len(edges), unit="edge", desc=slug, disable=options["no_progress"]) as bar:
            network = network_store(
                slug=slug,
                name=title,
                source=origin,
                nodes=nodes,
                edges=edges,
                progress=bar.update,
            )
        self.stdout.write(
            f"{network.slug}: {network.node_count} nodes, {network.edge_count} edges in "
            f"{time.perf_counter() - started:.1f} s. {network.attribution}"
        )
