"""Realistic demo traffic: e-commerce orders, page clicks and IoT temperature readings.

Every event carries its event time (``ts``, epoch ms, set when it is produced). Some orders
are test orders (filtered out downstream), some temperatures are spikes (anomalies), and a
small share of records are malformed (they end up in the dead-letter topic).
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import orjson

from headwater.client import Producer, new_producer

ORDERS = "orders"
CLICKS = "clicks"
TEMPERATURES = "temperatures"
CUSTOMERS = "customers"

COUNTRIES = ("DE", "FR", "NL", "ES", "IT", "SE")
PAGES = ("/", "/search", "/product", "/cart", "/checkout", "/help")
TIERS = ("basic", "silver", "gold")


@dataclass(slots=True)
class GeneratorStats:
    """What the generator produced, by kind; read from other threads for the dashboard."""

    orders: int = 0
    test_orders: int = 0
    clicks: int = 0
    readings: int = 0
    spikes: int = 0
    malformed: int = 0
    revenue: float = 0.0
    delivery_errors: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.orders + self.test_orders + self.clicks + self.readings + self.malformed


class EventGenerator:
    """Produces ``rate`` events per second (orders 20%, clicks 50%, readings 30%) until stopped."""

    def __init__(
        self,
        bootstrap: str,
        *,
        rate: float = 1000.0,
        customers: int = 200,
        sensors: int = 20,
        anomaly_rate: float = 0.002,
        malformed_rate: float = 0.002,
        test_order_rate: float = 0.05,
        seed: int | None = None,
        marker_interval_s: float | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.bootstrap = bootstrap
        self.rate = rate
        self.customers = customers
        self.sensors = sensors
        self.anomaly_rate = anomaly_rate
        self.malformed_rate = malformed_rate
        self.test_order_rate = test_order_rate
        self.rng = random.Random(seed)
        self.marker_interval_s = marker_interval_s
        self.markers = 0
        self.stats = GeneratorStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._order_seq = 0
        #: Order ids start with ``o-<run id>-`` so each run's orders can be told apart in
        #: stores that keep earlier runs' data.
        self.run_id = f"{int(time.time()):x}"
        self._baseline = {f"sensor-{i:02d}": self.rng.uniform(18.0, 24.0) for i in range(sensors)}
        self._producer: Producer = new_producer(
            bootstrap,
            "low-latency",
            {
                "linger.ms": 5,
                "enable.idempotence": True,
                "acks": "all",
                "on_delivery": self._delivered,
            },
        )

    def _delivered(self, err: object, _msg: object) -> None:
        if err is not None:
            self.stats.delivery_errors += 1

    def seed_customers(self) -> None:
        """Write the customer table (a compacted topic) the pipeline enriches orders with."""
        for i in range(self.customers):
            customer = {
                "customer_id": f"c{i:04d}",
                "name": f"Customer {i}",
                "tier": TIERS[i % len(TIERS)],
                "country": COUNTRIES[i % len(COUNTRIES)],
            }
            self._send(CUSTOMERS, f"c{i:04d}", orjson.dumps(customer))
        self._producer.flush(30)

    def _send(self, topic: str, key: str, value: bytes) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key.encode())
                break
            except BufferError:
                self._producer.poll(0.01)
        self.stats.by_topic[topic] = self.stats.by_topic.get(topic, 0) + 1

    def emit_one(self) -> None:
        """Produce one event of a random kind."""
        rng = self.rng
        now = int(time.time() * 1000)
        pick = rng.random()
        if rng.random() < self.malformed_rate:
            topic = (ORDERS, CLICKS, TEMPERATURES)[rng.randrange(3)]
            self._send(topic, "broken", b'{"ts": ' + str(now).encode() + b', "oops"')
            self.stats.malformed += 1
        elif pick < 0.2:
            self._order_seq += 1
            test = rng.random() < self.test_order_rate
            amount = round(rng.lognormvariate(3.5, 0.8), 2)
            order_id = f"o-{self.run_id}-{self._order_seq:09d}"
            order = {
                "order_id": order_id,
                "customer_id": f"c{rng.randrange(self.customers):04d}",
                "amount": amount,
                "items": rng.randint(1, 6),
                "test": test,
                "ts": now,
            }
            self._send(ORDERS, order_id, orjson.dumps(order))
            if test:
                self.stats.test_orders += 1
            else:
                self.stats.orders += 1
                self.stats.revenue += amount
        elif pick < 0.7:
            user = f"u{rng.randrange(5000):05d}"
            click = {"user_id": user, "page": PAGES[rng.randrange(len(PAGES))], "ts": now}
            self._send(CLICKS, user, orjson.dumps(click))
            self.stats.clicks += 1
        else:
            sensor = f"sensor-{rng.randrange(self.sensors):02d}"
            celsius = self._baseline[sensor] + rng.gauss(0, 0.4)
            if rng.random() < self.anomaly_rate:
                celsius += rng.choice((-1, 1)) * rng.uniform(15, 30)
                self.stats.spikes += 1
            reading = {"sensor_id": sensor, "celsius": round(celsius, 2), "ts": now}
            self._send(TEMPERATURES, sensor, orjson.dumps(reading))
            self.stats.readings += 1

    def emit_marker(self) -> None:
        """An order with a known id (``marker-N``) whose arrival downstream can be timed."""
        self.markers += 1
        order = {
            "order_id": f"marker-{self.run_id}-{self.markers:06d}",
            "customer_id": "c0000",
            "amount": 1.0,
            "items": 1,
            "test": False,
            "ts": int(time.time() * 1000),
        }
        self._send(ORDERS, str(order["order_id"]), orjson.dumps(order))
        self.stats.orders += 1
        self.stats.revenue += 1.0

    def run(self) -> None:
        """Produce at ``rate`` events/s until :meth:`stop`; paced in 10 ms steps."""
        started = time.monotonic()
        sent = 0
        next_marker = started
        while not self._stop.is_set():
            if self.marker_interval_s is not None and time.monotonic() >= next_marker:
                self.emit_marker()
                next_marker += self.marker_interval_s
            due = int((time.monotonic() - started) * self.rate)
            while sent < due and not self._stop.is_set():
                self.emit_one()
                sent += 1
                if sent % 1000 == 0:
                    self._producer.poll(0)
            self._producer.poll(0)
            time.sleep(0.01)
        self._producer.flush(30)

    def start(self) -> EventGenerator:
        self._thread = threading.Thread(target=self.run, name="demo-generator", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._stop.is_set()

    def stop(self) -> None:
        """Stop producing and wait until everything produced is acknowledged."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60)
        self._producer.flush(30)
        close = getattr(self._producer, "close", None)
        if close is not None:
            close()
