"""Finding printers and other units on the LAN: Bambu printers' SSDP announcements, and mDNS
(advertising this unit, browsing for other units and Moonraker printers)."""
