from bambu_edge.printers.temps import TempHistory, point_from_view


def view(state="connected", nozzle=(219.5, 220.0), bed=(55.0, 55.0), chamber=(30.0, None), pid="p1"):
    return {
        "id": pid,
        "link": {"state": state},
        "temps": {
            "nozzle": {"current": nozzle[0], "target": nozzle[1]},
            "bed": {"current": bed[0], "target": bed[1]},
            "chamber": {"current": chamber[0], "target": chamber[1]},
        },
    }


def test_point_carries_currents_and_targets():
    assert point_from_view(view(), 100.0) == (100.0, 219.5, 220.0, 55.0, 55.0, 30.0)


def test_offline_printer_leaves_a_gap_not_stale_numbers():
    assert point_from_view(view(state="offline"), 100.0) is None
    h = TempHistory(window_s=60, period_s=10)
    h.sample([view(), view(state="offline", pid="p2")], 1.0)
    assert len(h.points("p1")) == 1 and h.points("p2") == []


def test_window_keeps_only_the_last_hour():
    h = TempHistory(window_s=3600, period_s=10)
    for i in range(1000):
        h.sample([view(nozzle=(float(i), 220.0))], float(i * 10))
    pts = h.points("p1")
    assert len(pts) == 360
    assert pts[0][1] == 640.0 and pts[-1][1] == 999.0
    assert [p[0] for p in h.points("p1", since=9970.0)] == [9980.0, 9990.0]


def test_junk_temperatures_become_none():
    v = view(nozzle=("hot", True), bed=(float("nan"), None))
    p = point_from_view(v, 1.0)
    assert p is not None and p[1] is None and p[2] is None and p[3] is None
