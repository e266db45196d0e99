"""The command line: argument parsing, exit codes and signals, one module per command group.
No business logic; may import everything else."""
