"""Which setups a scenario runs (each with its variant options) and where it pins the app and the load."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from bench.errors import SetupError
from bench.scenario.strict import Strict


class SetupSpec(Strict):
    """A setup and its variant options (validated against that setup's Options)."""

    setup: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known(self) -> "SetupSpec":
        from bench.setups import registry  # here, so importing this module loads no setup

        try:
            cls = registry.get(self.setup)
        except SetupError as error:
            raise ValueError(str(error)) from None
        cls.Options(**self.options)  # raises a ValidationError naming the bad option
        return self

    @property
    def key(self) -> str:
        return self.setup + ("[" + ",".join(f"{k}={v}" for k, v in sorted(self.options.items())) + "]"
                             if self.options else "")

    @property
    def folder_key(self) -> str:
        """The key made safe as a folder name (trial ids, files)."""
        return "".join(c if c.isalnum() or c in "-_." else "-" for c in self.key)

    def same_variant(self, other: "SetupSpec") -> bool:
        """True when both run the same thing: options equal once defaults are filled in
        (`container` and `container: {network: bridge}`), or their files would collide."""
        if self.folder_key == other.folder_key:
            return True
        if self.setup != other.setup:
            return False
        from bench.setups import registry

        options = registry.get(self.setup).Options
        return options(**self.options) == options(**other.options)


class PinningSpec(Strict):
    app_cpus: list[Annotated[int, Field(ge=0, le=4095)]] = Field(min_length=1, max_length=4096)
    load_cpus: list[Annotated[int, Field(ge=0, le=4095)]] = Field(min_length=1, max_length=4096)
