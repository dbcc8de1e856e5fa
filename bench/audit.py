"""Cost of one audit record on the event loop: build (CloudEvent + uuid4 + time) and write.

.venv/bin/python bench/audit.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from headwater.broker import _audit
from headwater.protocol._codec import request_type, to_entity
from headwater.security._audit import AuditLog

N = 20_000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "audit" / "audit.log", bytes_max=10 * 1024 * 1024)
        broker = SimpleNamespace(audit=log, config=SimpleNamespace(node_id=1))
        ctx = SimpleNamespace(
            header=SimpleNamespace(api_key=19, client_id="adminclient-1"),
            client_host="10.0.0.5",
            principal="User:admin",
            listener="SASL_SSL",
        )
        listener = SimpleNamespace(name="SASL_SSL")
        session = SimpleNamespace(principal="User:alice", listener=listener)
        request = to_entity(
            request_type(19, 7),
            {
                "topics": [
                    {
                        "name": "orders",
                        "num_partitions": 3,
                        "configs": [{"name": "retention.ms", "value": "60000"}],
                    }
                ]
            },
        )
        response = {"topics": [{"name": "orders", "error_code": 0, "num_partitions": 3}]}
        cases = {
            "authentication": lambda: _audit.audit_authentication(
                broker, session, "10.0.0.5", "SCRAM-SHA-512", True
            ),
            "CreateTopics (1 topic)": lambda: _audit.audit_request(
                broker, ctx, 19, request, response
            ),
        }
        for name, fn in cases.items():
            for _ in range(1000):
                fn()
            start = time.perf_counter()
            for _ in range(N):
                fn()
            per = (time.perf_counter() - start) / N * 1e6
            print(f"{name}: {per:.1f} µs per record (rotating every 10 MB)")
        off = SimpleNamespace(audit=None)
        start = time.perf_counter()
        for _ in range(N):
            _audit.audit_request(off, ctx, 19, request, response)
        print(f"audit off: {(time.perf_counter() - start) / N * 1e9:.0f} ns per call")
        log.close()


if __name__ == "__main__":
    main()
