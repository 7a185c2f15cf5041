"""The Prometheus text the daemon writes (bambu_edge/metrics/exposition.py) reads back with
prometheus_client's parser, labels escaped, unknown values left out."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from bambu_edge.metrics.api import is_loopback
from bambu_edge.metrics.exposition import Family, render


def test_rendered_families_parse_back():
    temps = Family("t_celsius", "gauge", "temperatures\nwith a newline")
    temps.add(219.5, printer='x1c "left"\\', sensor="nozzle")
    temps.add(None, printer="p1s", sensor="nozzle")  # unknown: no sample, not a made-up 0
    count = Family("reports_total", "counter", "reports")
    count.add(12)
    parsed = {f.name: f for f in text_string_to_metric_families(render([temps, count]))}
    (s,) = parsed["t_celsius"].samples
    assert s.labels == {"printer": 'x1c "left"\\', "sensor": "nozzle"} and s.value == 219.5
    assert parsed["reports"].type == "counter" and parsed["reports"].samples[0].value == 12


def test_loopback_is_told_from_other_addresses():
    assert all(is_loopback(a) for a in ("127.0.0.1", "127.3.4.5", "::1", "::ffff:127.0.0.1"))
    assert not any(is_loopback(a) for a in ("10.0.0.2", "192.168.1.9", "fe80::1%eth0", "", None, "garbage"))
