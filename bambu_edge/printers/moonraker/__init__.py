"""Klipper printers through Moonraker's API as a library: JSON-RPC 2.0 messages (``rpc``), the
status folding into the generic printer view (``status``), commands (``commands``), files over
Moonraker's HTTP file API (``files``), history and webcam records (``records``) and the WebSocket
link (``link``). It imports nothing from the daemon around it (protocol/BAMBU.md section 12).
"""
