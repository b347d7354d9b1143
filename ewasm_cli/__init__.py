"""The `ewasm` command-line tool: one thin entry point over the project's packages."""
