"""The front panel: one push button and one status LED (single colour or RGB) on the Pi's GPIO."""
