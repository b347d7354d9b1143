from ewasm_cli.main import main

raise SystemExit(main())
