"""The Bambu LAN protocol as a library: MQTT reports folded into a printer view (``report``),
commands (``commands``), the MQTT link (``link``), certificate trust (``tls``), storage over FTPS
(``ftps``), model tables (``models``). It imports nothing from the daemon around it: the link takes
its settings, a trust store and a listener from whoever runs it.

This file imports nothing, so pure parts (``models``, ``protocol``, ``storage``) stay cheap to import
for the config and file readers.
"""
