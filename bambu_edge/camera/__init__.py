"""The camera subsystem: one upstream per printer camera, copied to any number of viewers."""
