"""`tenant destroy` asks before deleting: --yes for scripts; with no terminal and no --yes it is refused
before the cloud is touched."""
from __future__ import annotations

from click.testing import CliRunner

from cli.main import cli


def test_destroy_without_yes_and_without_a_terminal_is_refused_before_the_cloud(tmp_path):
    clouds = tmp_path / "missing-clouds.yaml"          # reading it would fail differently: it is never read
    r = CliRunner().invoke(cli, ["tenant", "destroy", "health", "--operator", "telecom", "--clouds", str(clouds)])
    assert r.exit_code == 2, r.output
    assert "confirm with --yes" in r.output and "--dry-run" in r.output
    assert str(clouds) not in r.output and "Traceback" not in r.output


def test_destroy_with_yes_or_dry_run_goes_to_the_cloud_without_asking(tmp_path):
    clouds = tmp_path / "missing-clouds.yaml"
    for flag in ("--yes", "-y", "--dry-run"):
        r = CliRunner().invoke(cli, ["tenant", "destroy", "health", "--operator", "telecom", "--clouds", str(clouds),
                                     flag], input="")
        # past the confirmation: it went to read the clouds.yaml (which is missing), asking nothing
        assert r.exit_code == 4 and f"clouds file {clouds} does not exist" in r.output, (flag, r.output)
        assert "confirm with --yes" not in r.output and "[y/N]" not in r.output, (flag, r.output)


def test_help_teaches_the_confirmation():
    r = CliRunner().invoke(cli, ["tenant", "destroy", "--help"])
    assert r.exit_code == 0 and "--yes" in r.output and "Asks before deleting" in r.output
