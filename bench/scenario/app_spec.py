"""The `app:` / `apps:` part of a scenario: which app runs, a shipped one or a user's local image."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


IMAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$"  # NAME:TAG, a registry path, or an image id
URL_PATH_PATTERN = r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,200}$"


def _named_apps() -> list[str]:
    """The apps a scenario may name (the registry's, plugins included; a user's image is given by reference)."""
    from bench.apps import registry  # here: importing this module loads no app

    return registry.named_kinds()


def _default_app() -> str:
    from bench.apps import registry

    return registry.default_kind()


def _image_app() -> str:
    from bench.apps import registry

    return registry.reference_kind()


class AppSpec(BaseModel):
    """The app a scenario runs: a shipped one by name (`python`, `nginx`), or a user's local image
    (`{image: NAME:TAG, port: P, path: /..., ready: /...}`; `hello` then requests `path`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default_factory=_default_app)  # the app that declares itself the default
    image: str | None = None
    port: int | None = Field(default=None, ge=1, le=65535)  # default: the one port the image exposes
    path: str | None = None  # default: /
    ready: str | None = None  # default: path

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str | None) -> str | None:
        if value is not None and not re.match(IMAGE_PATTERN, value):
            raise ValueError("image must be a local image reference like name:tag (letters, digits, . _ / : @ -)")
        return value

    @field_validator("path", "ready")
    @classmethod
    def _url_path(cls, value: str | None) -> str | None:
        if value is not None and not re.match(URL_PATH_PATTERN, value):
            raise ValueError("must be a URL path starting with / (no spaces, at most 200 characters)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # "app: nginx" names a shipped app; a mapping with `image` is a user's image.
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "image" in value and "name" not in value:
            return {**value, "name": _image_app()}
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "AppSpec":
        if self.name == _image_app():
            if self.image is None:
                raise ValueError("an image app needs image: NAME:TAG (a local image; nothing is pulled)")
        elif self.name not in (known := _named_apps()):
            raise ValueError(f"unknown app {self.name!r}; choose from: {', '.join(known)}, "
                             f"or {{image: NAME:TAG, port: P, path: /...}}")
        elif any(value is not None for value in (self.image, self.port, self.path, self.ready)):
            raise ValueError("image, port, path and ready describe a user's image; a shipped app takes none")
        return self

    @property
    def key(self) -> str:
        """What records and labels call the app: its name, or the image's reference."""
        return self.image or self.name

    def build(self):
        """The app (a bench.apps.base.App); imports no engine code."""
        from bench.apps import registry

        if self.name == registry.reference_kind():
            return registry.build(self.name, image=self.image, port=self.port, path=self.path or "/", ready=self.ready)
        return registry.build(self.name)
