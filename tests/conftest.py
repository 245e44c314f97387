"""Test set-up: the tests import the installed fastml, never ``src/``."""

import pathlib

import fastml


def pytest_report_header(config):
    where = pathlib.Path(fastml.__file__).resolve().parent
    return f"fastml {fastml.__version__} imported from {where}"
