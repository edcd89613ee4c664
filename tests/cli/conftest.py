import pytest

from cli_graphs import build_bad_shapes, build_foldable, build_snn
from talon import ir


@pytest.fixture
def snn_file(tmp_path):
    path = tmp_path / "snn.t1c"
    ir.write(path, build_snn())
    return str(path)


@pytest.fixture
def foldable_file(tmp_path):
    path = tmp_path / "fold.t1c"
    ir.write(path, build_foldable())
    return str(path)


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "bad.t1c"
    ir.write(path, build_bad_shapes())
    return str(path)


@pytest.fixture
def run_cli():
    """Invoke the CLI in-process; returns (exit code, stdout, stderr)."""
    from click.testing import CliRunner

    from talon.cli import cli

    def run(*args):
        runner = CliRunner()
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run
