"""The printer-compatible fan-out endpoint: a mosquitto bambu-edge manages, on which other MQTT
clients (slicers, Home Assistant, scripts) see each printer as if they were connected to it, while
the printer keeps its single upstream session (docs/fanout.md)."""
