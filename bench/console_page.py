"""Console page benchmark: how fast the dispatcher console renders and updates a big fleet in a
real Chromium (Debian's, via Playwright).

Serves the app with uvicorn on a free port against the database in DATABASE_URL (which needs
`manage.py load_demo`: it logs in as dispatcher@demo.example), opens /console/, then feeds the
page a synthetic snapshot of N vehicles and N routes (`ctConsole.applySnapshot`) and rounds of
one `vehicle.moved` per vehicle through the same in-order delivery path the socket uses
(`ctConsole.receive`). Times include the next two animation frames (layout and paint).

    .venv/bin/python bench/console_page.py --vehicles 2000 --rounds 10
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.results_file import write_results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SYNTHETIC = """
async ([n, rounds]) => {
  const frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const base = 1e6, now = Date.now();
  const lat0 = -29.95, lon0 = -71.30;
  const vehicles = [], routes = [];
  for (let i = 0; i < n; i++) {
    vehicles.push({id: base + i, label: `BENCH-${i}`, carrier: null, route: base + i, driver: null,
      lat: lat0 + (i % 50) * 0.002, lon: lon0 + Math.floor(i / 50) * 0.002, heading: (i * 37) % 360,
      speed_kmh: i % 3 ? 25 : 0, battery: 80,
      fix_time: new Date(now - (i % 40) * 60000).toISOString()});
    routes.push({id: base + i, code: `B-${String(i).padStart(4, "0")}`, status: "in_progress",
      date: "2026-12-01", carrier: null, hub: null, vehicle: base + i, driver: null,
      stops_total: 20, stops_done: i % 20, late_stops: i % 7 === 0 ? 1 : 0, next_eta: null,
      last_fix_time: new Date(now - (i % 40) * 60000).toISOString()});
  }
  const state = ctConsole.state;
  const snap = {v: 1, seq: state.seq, generated_at: new Date().toISOString(),
    organization: state.organization, carriers: [], hubs: [], vehicles, routes};
  let t = performance.now();
  ctConsole.applySnapshot(snap);
  await frames();
  const snapshotMs = performance.now() - t;
  const roundMs = [];
  for (let r = 1; r <= rounds; r++) {
    t = performance.now();
    for (let i = 0; i < n; i++) {
      const v = vehicles[i];
      ctConsole.receive({v: 1, type: "vehicle.moved", seq: state.seq + 1, data: {id: v.id,
        lat: v.lat + r * 0.0001, lon: v.lon + r * 0.0001, heading: (v.heading + r * 7) % 360,
        speed_kmh: 25, battery: 80, fix_time: new Date().toISOString(), route: v.route}});
    }
    await frames();
    roundMs.push(performance.now() - t);
  }
  return {snapshotMs, roundMs, markers: ctConsole.markerCount(),
    listed: document.querySelectorAll("#route-list .route-item").length,
    iconUpdates: state.stats.iconUpdates};
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vehicles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen(
        [str(ROOT / ".venv/bin/uvicorn"), "control_tower.asgi:application", "--host",
         "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=os.environ.copy(),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"]
            )
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            context.route(
                "**/*",
                lambda route, req: route.continue_() if "127.0.0.1" in req.url else route.abort(),
            )
            page = context.new_page()
            page.goto(f"{base}/accounts/login/")
            page.fill("input[name=username]", "dispatcher@demo.example")
            page.fill("input[name=password]", "demo1234")
            with page.expect_navigation():
                page.click("button[type=submit]")
            page.goto(f"{base}/console/")
            page.wait_for_selector("#live-status[data-state=live]")
            figures = page.evaluate(SYNTHETIC, [args.vehicles, args.rounds])
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    rounds = figures["roundMs"]
    write_results(
        "console_page",
        {
            "vehicles": args.vehicles,
            "routes": args.vehicles,
            "markers_drawn": figures["markers"],
            "routes_listed": figures["listed"],
            "snapshot_render_ms": round(figures["snapshotMs"], 1),
            "moves_per_round": args.vehicles,
            "rounds": args.rounds,
            "round_apply_and_paint_p50_ms": round(statistics.median(rounds), 1),
            "round_apply_and_paint_max_ms": round(max(rounds), 1),
            "per_move_p50_us": round(statistics.median(rounds) * 1000 / args.vehicles, 1),
            "icon_restyles_in_place": figures["iconUpdates"],
        },
    )


if __name__ == "__main__":
    main()
