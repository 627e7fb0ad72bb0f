"""The ``yunshang`` command line: click groups that translate the core's data for people and machines."""
