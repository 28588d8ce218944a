"""One definition per setting: flags, config-file keys, env vars and Studio's schema all
come from the fields of TPOConfig and BackendSettings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from langgraph_tpo.backends.factory import BackendSettings
from langgraph_tpo.cli import options as o
from langgraph_tpo.cli.run import run
from langgraph_tpo.config import TPOConfig
from langgraph_tpo.studio import StudioContext, context_schema

BEAM_HELP = "Beams kept per iteration by a search this test adds."


class BeamConfig(TPOConfig):
    beam_width: int = Field(1, ge=1, description=BEAM_HELP)
    greedy_first: bool = Field(False, description="Draw the first response greedily (test).")


class TunnelSettings(BackendSettings):
    tunnel_host: str | None = Field(None, description="SSH host the servers are reached through.")


def app_with(command: Any) -> typer.Typer:
    app = typer.Typer(add_completion=False)
    app.command("go")(command)
    app.command("other")(lambda: None)  # two commands: "go" stays a subcommand
    return app


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[tuple[TPOConfig, BackendSettings]]:
    """A command with the settings of BeamConfig and TunnelSettings that records what they
    resolve to."""
    for name in ("TPO_POLICY_URL", "TPO_POLICY_PATH", "TPO_REWARD_URL", "TPO_NUM_SAMPLES"):
        monkeypatch.delenv(name, raising=False)
    return []


def recording_app(seen: list[tuple[TPOConfig, BackendSettings]]) -> typer.Typer:
    @o.settings_options(BeamConfig, TunnelSettings)
    def go(*, settings: o.CommandSettings) -> None:
        """Resolve the settings."""
        seen.append(settings.resolve())

    return app_with(go)


def test_a_new_config_field_is_a_flag_with_its_description_on_the_real_run_command() -> None:
    app = app_with(o.settings_options(BeamConfig)(run.__wrapped__))  # type: ignore[attr-defined]
    result = CliRunner().invoke(app, ["go", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--beam-width" in result.output and BEAM_HELP in result.output
    assert "TPO_BEAM_WIDTH" in result.output
    assert "--greedy-first" in result.output and "--no-greedy-first" in result.output
    for flag in ("--num-samples", "-n", "--threshold", "--policy-url", "--json", "--retries"):
        assert flag in result.output
    assert "--review-gradient" not in result.output


def test_a_new_config_field_is_in_studio_schema_with_its_description() -> None:
    properties = context_schema(BeamConfig, TunnelSettings).model_json_schema()["properties"]
    assert properties["beam_width"]["description"] == BEAM_HELP
    assert "SSH host" in properties["tunnel_host"]["description"]
    assert (
        properties["num_samples"]["description"]
        == TPOConfig.model_fields["num_samples"].description
    )
    assert "api_key" not in properties  # a secret stays in the server's environment


def test_studio_schema_has_every_setting_but_the_secret() -> None:
    properties = StudioContext.model_json_schema()["properties"]
    expected = set(TPOConfig.model_fields) | set(BackendSettings.model_fields) - {"api_key"}
    assert set(properties) == expected
    for name, field in BackendSettings.model_fields.items():
        if name != "api_key":
            assert properties[name]["description"] == field.description


def test_new_fields_come_from_flags_file_and_env_in_that_order(
    resolved: list[tuple[TPOConfig, BackendSettings]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    app = recording_app(resolved)
    settings = tmp_path / "tpo.toml"
    settings.write_text('beam_width = 4\ntunnel-host = "file-host"\nthreshold = 0.5\n')
    monkeypatch.setenv("TPO_BEAM_WIDTH", "9")
    monkeypatch.setenv("TPO_TUNNEL_HOST", "env-host")
    monkeypatch.setenv("TPO_MAX_TOKENS", "77")

    runner = CliRunner()
    assert runner.invoke(app, ["go"]).exit_code == 0
    assert runner.invoke(app, ["go", "--config", str(settings)]).exit_code == 0
    args = ["go", "--config", str(settings), "--beam-width", "3", "--tunnel-host", "flag-host"]
    assert runner.invoke(app, [*args, "--greedy-first"]).exit_code == 0

    (env_config, env_backends), (file_config, file_backends), (flag_config, flag_backends) = (
        resolved
    )
    assert isinstance(env_config, BeamConfig) and isinstance(env_backends, TunnelSettings)
    assert (env_config.beam_width, env_backends.tunnel_host) == (9, "env-host")
    assert (file_config.beam_width, file_backends.tunnel_host) == (4, "file-host")
    assert file_config.score_threshold == 0.5
    assert (flag_config.beam_width, flag_backends.tunnel_host) == (3, "flag-host")
    assert flag_config.greedy_first and not file_config.greedy_first
    assert env_config.max_tokens == flag_config.max_tokens == 77  # env beats embedded defaults
    assert env_config.num_samples == 3  # embedded default: no policy configured


def test_a_bad_value_of_a_new_field_is_a_config_error_naming_it(
    resolved: list[tuple[TPOConfig, BackendSettings]],
) -> None:
    result = CliRunner().invoke(recording_app(resolved), ["go", "--beam-width", "0"])
    assert result.exit_code == 1 and not resolved
    assert "beam_width" in str(result.exception)


def test_settings_and_command_parameters_cannot_share_a_name() -> None:
    def go(num_samples: int = 1, *, settings: o.CommandSettings) -> None:
        """A command whose own parameter is a setting."""

    with pytest.raises(TypeError, match="num_samples"):
        o.settings_options()(go)


def test_unflagged_settings_say_why() -> None:
    assert set(o.NO_FLAG) == {"review_gradient"}
    assert "interactive resume" in o.NO_FLAG["review_gradient"]
    assert "review_gradient" not in o.CONFIG_FLAGS
