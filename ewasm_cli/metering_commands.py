"""`ewasm check`, `ewasm meter`, `ewasm inspect`: the transpiler for contract authors."""


def register(sub) -> None:
    """Add the transpiler's subcommands (filled in with the metering package)."""
