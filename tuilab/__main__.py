from tuilab.cli import main

raise SystemExit(main())
