"""The command line over every package: ``peftbench`` (cli/main.py)."""
