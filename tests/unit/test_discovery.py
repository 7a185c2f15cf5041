"""Discovery's pure parts: its config sections, the bounded printer table, mDNS records."""

from __future__ import annotations

import pytest

from bambu_edge.app import config_sections
from bambu_edge.config import ConfigError, parse_config
from bambu_edge.discovery.config import DiscoveryConfig
from bambu_edge.discovery.peers import BAMBU_EDGE_TYPE, MOONRAKER_TYPE, PeerTable, peer_from_record
from bambu_edge.discovery.table import ConfiguredPrinters, PrinterTable, printers_json
from bambu_edge.node import NodeConfig, id_from_hostname
from bambu_edge.printers.bambu.ssdp import Announcement


def parse(text: str):
    return parse_config(text, "c.yaml", env={}, sections=config_sections())


def test_discovery_and_node_sections_defaults_and_errors() -> None:
    cfg = parse("{}\n")
    assert cfg.section("discovery") == DiscoveryConfig(ssdp=True, ssdp_ports=(2021, 1990), mdns=True)
    assert cfg.section("node").id == id_from_hostname(__import__("socket").gethostname())
    cfg = parse(
        "discovery: {ssdp: false, ssdp_ports: [4000], mdns: false}\nnode: {id: garage, name: Garage}\n"
    )
    assert cfg.section("discovery") == DiscoveryConfig(ssdp=False, ssdp_ports=(4000,), mdns=False)
    assert cfg.section("node") == NodeConfig(id="garage", name="Garage")
    assert parse("node: {id: garage}\n").section("node") == NodeConfig(id="garage", name="garage")
    assert (
        parse("discovery: {ssdp_interface: 127.0.0.1}\n").section("discovery").ssdp_interface == "127.0.0.1"
    )
    for text, where in [
        (
            "discovery:\n  ssdp_ports: [2021, 2021]\n",
            "c.yaml:2: discovery.ssdp_ports[1]: port 2021 is listed twice",
        ),
        ("discovery:\n  ssdp_ports: [0]\n", "c.yaml:2: discovery.ssdp_ports[0]: must be a UDP port"),
        ("discovery:\n  ssdp_ports: []\n", "c.yaml:2: discovery.ssdp_ports: must list 1 to 8"),
        ("discovery:\n  mdns: yes please\n", "c.yaml:2: discovery.mdns: must be true or false"),
        ("discovery:\n  upnp: true\n", "c.yaml:2: discovery.upnp: unknown key"),
        ("discovery:\n  ssdp_interface: eth0\n", "c.yaml:2: discovery.ssdp_interface: must be an IPv4"),
        ("node:\n  id: Garage Pi\n", "c.yaml:2: node.id: must be lower-case letters"),
    ]:
        with pytest.raises(ConfigError) as e:
            parse(text)
        assert str(e.value).startswith(where), str(e.value)


def test_node_id_from_the_host_name() -> None:
    assert id_from_hostname("Pi-Garage.local") == "pi-garage"
    assert id_from_hostname("raspberrypi") == "raspberrypi"
    assert id_from_hostname("my_box 2") == "my-box-2"
    assert id_from_hostname("___") == "bambu-edge"


def announcement(serial: str, max_age: int = 1800, host: str | None = "10.0.0.5") -> Announcement:
    return Announcement(serial=serial, model="P1S", name=f"P {serial}", host=host, max_age_s=max_age)


def test_table_expires_entries_after_their_max_age_and_keeps_the_latest_sighting() -> None:
    t = PrinterTable()
    t.seen(announcement("01P1", max_age=60), "10.0.0.9", wall=1000.0, mono=5.0)
    t.seen(announcement("01P2", max_age=10, host=None), "10.0.0.9", wall=1001.0, mono=6.0)
    assert [(p.serial, p.host) for p in t.printers(mono=10.0)] == [("01P1", "10.0.0.5"), ("01P2", "10.0.0.9")]
    assert [p.serial for p in t.printers(mono=16.0)] == ["01P1"]
    t.seen(announcement("01P1", max_age=60), "10.0.0.9", wall=1050.0, mono=55.0)  # announced again
    assert [p.seen_at for p in t.printers(mono=100.0)] == [1050.0]
    assert t.printers(mono=115.0) == []


def test_table_is_bounded_and_drops_what_was_heard_from_longest_ago() -> None:
    t = PrinterTable(limit=3)
    for i, serial in enumerate(["01PA", "01PB", "01PC"]):
        t.seen(announcement(serial), "h", wall=float(i), mono=float(i))
    t.seen(announcement("01PA"), "h", wall=3.0, mono=3.0)  # heard again: now the freshest
    t.seen(announcement("01PD"), "h", wall=4.0, mono=4.0)
    assert len(t) == 3 and {p.serial for p in t.printers(mono=5.0)} == {"01PA", "01PC", "01PD"}


def test_printers_json_marks_configured_serials() -> None:
    t = PrinterTable()
    t.seen(announcement("01PA"), "h", wall=7.0, mono=0.0)
    configured = ConfiguredPrinters()
    configured.put("left", {"serial": "01pa", "host": "10.0.0.5"})
    assert printers_json(t.printers(0.0), configured.serials) == [
        {
            "serial": "01PA",
            "model": "P1S",
            "name": "P 01PA",
            "host": "10.0.0.5",
            "seen_at": 7.0,
            "configured": True,
        }
    ]
    configured.remove("left")
    assert printers_json(t.printers(0.0), configured.serials)[0]["configured"] is False


def test_mdns_records_are_checked_before_they_are_shown() -> None:
    unit = peer_from_record(
        BAMBU_EDGE_TYPE,
        f"Farm B.{BAMBU_EDGE_TYPE}",
        {b"node": b"farm-b", b"name": b"Farm \x1b[2JB", b"version": b"1.2"},
        ["fe80::1", "10.0.0.2"],
        3443,
    )
    assert unit is not None
    assert unit.node_json() == {
        "node": "farm-b",
        "name": "Farm [2JB",
        "host": "10.0.0.2",
        "port": 3443,
        "version": "1.2",
    }
    bad_node = {b"node": b"../../x"}
    assert peer_from_record(BAMBU_EDGE_TYPE, "x." + BAMBU_EDGE_TYPE, bad_node, ["10.0.0.2"], 1) is None
    assert peer_from_record(BAMBU_EDGE_TYPE, "x." + BAMBU_EDGE_TYPE, {b"node": b"a"}, ["fe80::1"], 1) is None
    assert peer_from_record(MOONRAKER_TYPE, "v." + MOONRAKER_TYPE, {}, ["10.0.0.3"], 0) is None
    voron = peer_from_record(
        MOONRAKER_TYPE, f"Voron @ voron.{MOONRAKER_TYPE}", {b"version": b"\xff" * 100}, ["10.0.0.3"], 7125
    )
    assert voron is not None and voron.moonraker_json({"10.0.0.3"}) == {
        "name": "Voron @ voron",
        "host": "10.0.0.3",
        "port": 7125,
        "version": None,
        "configured": True,
    }


def test_peer_table_is_bounded() -> None:
    table = PeerTable(limit=2)
    for i in range(5):
        peer = peer_from_record(MOONRAKER_TYPE, f"m{i}.{MOONRAKER_TYPE}", {}, ["10.0.0.3"], 7125)
        assert peer is not None
        table.put(peer)
    assert [p.name for p in table.peers()] == ["m3", "m4"]
