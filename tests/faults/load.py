"""Sustained ingest from many phones at once, recording what each request was answered: the
fault tests compare what was acknowledged with what the database holds afterwards."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise

# The first fix of each phone is this far in the past, one second apart after it: every fix of
# a phone has its own time (the primary key), and none is ahead of the clock.
START_AGO_S = 3600


@dataclass
class Answer:
    sent_at: float  # time.monotonic()
    status: int | None  # None: no HTTP answer at all (connection refused, reset, timeout)
    retry_after: str | None
    error: str | None  # the JSON body's "error" code
    fixes: list[tuple[int, int]]  # (device id, fix time in epoch seconds)


@dataclass
class IngestLoad:
    """Each phone sends in its own thread, as fast as it is answered: OsmAnd single fixes
    through the device fast path, or (`batch` > 1) native batches through the DRF API."""

    base_url: str
    devices: list[dict]
    batch_devices: int = 4
    batch: int = 20
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._start_epoch = int(time.time()) - START_AGO_S

    def start(self) -> None:
        for n, device in enumerate(self.devices):
            batched = n < self.batch_devices
            thread = threading.Thread(target=self._phone, args=(device, batched), daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _phone(self, device: dict, batched: bool) -> None:
        second = 0
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            while not self._stop.is_set():
                size = self.batch if batched else 1
                epochs = [self._start_epoch + second + k for k in range(size)]
                second += size
                sent_at = time.monotonic()
                try:
                    response = _send(client, device, epochs, batched)
                    status, retry_after = response.status_code, response.headers.get("retry-after")
                    error = _error_code(response)
                except httpx.TransportError:
                    status = retry_after = error = None
                    time.sleep(0.05)
                answer = Answer(
                    sent_at, status, retry_after, error, [(device["id"], e) for e in epochs]
                )
                with self._lock:
                    self.answers.append(answer)
                if status == 503:
                    time.sleep(
                        0.05
                    )  # a phone waits before sending again (not Retry-After: the test is short)

    def acknowledged(self) -> set[tuple[int, int]]:
        return {fix for a in self.answers if a.status == 200 for fix in a.fixes}


def _send(client: httpx.Client, device: dict, epochs: list[int], batched: bool) -> httpx.Response:
    lat = -29.90 - (epochs[0] % 1000) / 100_000
    if not batched:
        params = {
            "id": "phone",
            "lat": f"{lat:.6f}",
            "lon": "-71.2460",
            "timestamp": str(epochs[0]),
        }
        return client.get(f"/ingest/osmand/{device['token']}/", params=params)
    fixes = [
        {
            "time": datetime.fromtimestamp(e, UTC).isoformat(),
            "lat": lat,
            "lon": -71.246,
            "accuracy": 5,
        }
        for e in epochs
    ]
    return client.post(
        "/api/v1/ingest/pings", json=fixes, headers={"Authorization": f"Device {device['token']}"}
    )


def _error_code(response: httpx.Response) -> str | None:
    if response.status_code < 400:
        return None
    try:
        return response.json().get("error")
    except ValueError:
        return "not json"
