"""bambu-edge: a LAN appliance daemon for Bambu Lab and Klipper 3D printers."""

__version__ = "0.1.0"
