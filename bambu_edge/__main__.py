from bambu_edge.cli import main

raise SystemExit(main())
