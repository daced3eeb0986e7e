"""The benchmark's peer: Python's `eventsourcing` (9.5.x) on the lab's workload.

An order aggregate whose events are created, one item added, then its quantity going 2, 3,
2...; `batch` events are triggered and saved together (one transaction per save, the
library's optimistic concurrency on the aggregate's version), with its SQLite recorder in
WAL mode under `synchronous = FULL` and `NORMAL`. Prints rows of the benchmark's table.
"""

import os
import tempfile
import time

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.sqlite import SQLiteConnectionPool

# The recorder's connections use WAL (the library sets it) and SQLite's default
# `synchronous`; every connection it makes gets the mode under test instead.
SYNC = {"mode": "FULL"}
_create_connection = SQLiteConnectionPool._create_connection


def _create_connection_with_sync(self):
    connection = _create_connection(self)
    connection._sqlite_conn.execute(f"PRAGMA synchronous={SYNC['mode']}")
    return connection


SQLiteConnectionPool._create_connection = _create_connection_with_sync


class Order(Aggregate):
    @event("Created")
    def __init__(self, customer):
        self.customer = customer
        self.lines = {}

    @event("ItemAdded")
    def add_item(self, sku, quantity, unit_price_cents):
        self.lines[sku] = [quantity, unit_price_cents]

    @event("QuantityUpdated")
    def update_quantity(self, sku, quantity):
        self.lines[sku][0] = quantity


class Orders(Application):
    pass


def commits(sync, batch):
    if sync == "FULL":
        return 1000 if batch == 1 else 500
    return {1: 10000, 10: 3000}.get(batch, 500)


def measure(sync, batch):
    path = os.path.join(tempfile.mkdtemp(), "peer.db")
    SYNC["mode"] = sync
    app = Orders(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path})
    order = Order(customer="ada")
    app.save(order)
    order.add_item("TEA", 1, 300)
    app.save(order)
    n = commits(sync, batch)
    version = 3
    started = time.perf_counter()
    for _ in range(n):
        for _ in range(batch):
            order.update_quantity("TEA", 2 + version % 2)
            version += 1
        app.save(order)
    elapsed = time.perf_counter() - started
    return n * batch / elapsed


for sync in ("FULL", "NORMAL"):
    for batch in (1, 10, 100):
        rate = measure(sync, batch)
        print(f"| eventsourcing 9.5 (Python), {sync} | {batch} | | {rate:.0f} | |")
