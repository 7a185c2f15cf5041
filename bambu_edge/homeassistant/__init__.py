"""Home Assistant MQTT discovery: each printer appears in Home Assistant as a device with its
sensors, a chamber light and pause/resume/stop buttons, over a broker the user names
(docs/homeassistant.md)."""
