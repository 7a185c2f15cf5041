"""USB devices as udev reports them: cameras offered as camera sources, sticks whose
``bambu-edge/`` folder holds print files to import into the queue."""
