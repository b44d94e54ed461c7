"""A wrong configuration stops Muster with a message naming the variable, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from muster.app.loaders import load_master_key
from muster.cli.main import app
from muster.config import ConfigurationError, Settings, load_settings


def test_invalid_values_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUSTER_PORT", "eighty")
    monkeypatch.setenv("MUSTER_PUBLIC_URL", "mdm.example.com")
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert "MUSTER_PORT" in str(error.value) and "MUSTER_PUBLIC_URL" in str(error.value)
    assert "https://" in str(error.value)


def test_serve_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["serve"], env={"MUSTER_DATA_DIR": str(tmp_path), "MUSTER_SCEP_CHALLENGE_TTL_SECONDS": "5"}
    )
    assert result.exit_code == 2
    assert "MUSTER_SCEP_CHALLENGE_TTL_SECONDS" in result.output


def test_master_key_sources(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MUSTER_MASTER_KEY: the master key must be base64"):
        load_master_key(Settings(data_dir=tmp_path, master_key="not base64!"))
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_master_key(Settings(data_dir=tmp_path, master_key_file=tmp_path / "missing.key"))
    generated = load_master_key(Settings(data_dir=tmp_path))  # the embedded default makes one, once
    assert len(generated) == 32 and load_master_key(Settings(data_dir=tmp_path)) == generated
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    (tmp_path / "master.key").write_text("zz")
    with pytest.raises(ConfigurationError, match="64 hexadecimal"):
        load_master_key(Settings(data_dir=tmp_path))
