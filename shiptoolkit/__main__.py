from shiptoolkit.cli import cli

cli(prog_name="shiptoolkit")
