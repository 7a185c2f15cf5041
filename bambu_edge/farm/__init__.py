"""Farm sync: several units share one MQTT broker (DESIGN §7, docs/farm.md)."""
