"""`python -m shiptoolkit`: the same command as `shiptoolkit`."""

from shiptoolkit.cli import cli

cli(prog_name="shiptoolkit")
