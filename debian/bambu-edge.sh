#!/bin/sh
# /usr/bin/bambu-edge: bambu-edge's own modules and the pinned Python packages it carries live in
# /usr/lib/bambu-edge (docs/packaging.md). PYTHONPATH, not a path set inside Python, so that the
# daemon's own child processes (sys.executable -m ...) find them too; -P keeps the current
# directory off the module path.
PYTHONPATH=/usr/lib/bambu-edge/app:/usr/lib/bambu-edge/vendor${PYTHONPATH:+:$PYTHONPATH}
export PYTHONPATH
exec /usr/bin/python3 -P -m bambu_edge "$@"
