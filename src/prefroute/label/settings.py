"""Where ``prefroute label`` sends its calls: the strong, weak and judge upstreams.

The same TOML file as ``prefroute serve``, read the same way (``load_settings``:
flags over the file, every problem reported with its source): ``[strong]``,
``[weak]`` and ``[judge]`` tables of ``UpstreamSettings`` (``model``,
``base_url``, ``api_key_env``, ``answer_timeout``, ``input_cost`` / ``output_cost``),
``retries`` and ``backoff`` for failed calls, ``turns`` for the routing text.
Keys only the server uses (``routers``, ``host``, …) are accepted and ignored,
so one file serves both commands; any other unknown key is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, NonNegativeInt, model_validator

from prefroute.conversation import Turns
from prefroute.errors import ConfigError
from prefroute.serve.config import ServeSettings, UpstreamSettings, load_settings

Role = Literal["strong", "weak", "judge"]
ROLES: tuple[Role, ...] = ("strong", "weak", "judge")
ANSWERING: tuple[Role, Role] = ("strong", "weak")


class LabelSettings(BaseModel):
    """The upstreams of a label run and how failed calls are retried."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strong: UpstreamSettings = UpstreamSettings()
    weak: UpstreamSettings = UpstreamSettings()
    judge: UpstreamSettings = UpstreamSettings()
    turns: Turns = "first"
    retries: NonNegativeInt = 2
    backoff: NonNegativeFloat = 0.25

    @model_validator(mode="before")
    @classmethod
    def _ignore_server_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        server_only = set(ServeSettings.model_fields) - set(cls.model_fields)
        kept = {k: v for k, v in data.items() if k not in server_only}
        if kept.get("turns") is None:
            kept.pop("turns", None)  # serve's "follow the artifact" is label's default
        if kept.get("judge") is None:
            kept.pop("judge", None)
        return kept

    def upstream(self, role: Role) -> UpstreamSettings:
        return {"strong": self.strong, "weak": self.weak, "judge": self.judge}[role]

    def model(self, role: Role) -> str:
        """The model id ``role`` is called with: the flag, else the file's ``[role] model``."""
        model = self.upstream(role).model
        if model is None:
            raise ConfigError(f"no {role} model: pass --{role} MODEL or set [{role}] model")
        return model


def load_label_settings(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> LabelSettings:
    """The config file (if any) with the command line's ``overrides`` on top, validated."""
    return load_settings(path, overrides, cls=LabelSettings)
