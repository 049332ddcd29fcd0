"""A layer's colour, decided once for every output: its setup's declared hue (or a spare one),
lighter for its 2nd, 3rd ... variant (bench.vocabulary.shade)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.vocabulary import HEX_COLOUR, SPARE_COLOURS, shade

if TYPE_CHECKING:
    from bench.model.run import Run


def declared_colour(value: str | None) -> str | None:
    """A layer's declared hue if it is one (#rrggbb): run.json is user-editable, and the colour goes
    into charts, terminal styles and the report's style attributes."""
    return value if isinstance(value, str) and HEX_COLOUR.fullmatch(value) else None


def layer_colour(run: "Run", setup: str, variant: str, app: str | None = None) -> str:
    """The same layer has the same hue for every app (charts tell apps apart by hatch and line style).
    Layers prepared but not measured yet (the live view) count after the measured ones. Always #rrggbb."""
    keys = [(key.setup, key.variant) for key in run.layer_keys]
    keys += [(layer.setup, layer.variant) for layer in run.prepared_layers if (layer.setup, layer.variant) not in keys]
    setups = list(dict.fromkeys(key_setup for key_setup, _ in keys))
    declared = declared_colour(run.layer(setup, variant, app).colour)
    base = declared or SPARE_COLOURS[(setups.index(setup) if setup in setups else 0) % len(SPARE_COLOURS)]
    # Shades count among the variants that share this hue: a variant declaring a hue of its own
    # (a gVisor sandbox among containers) starts its own series.
    variants = list(dict.fromkeys(key_variant for key_setup, key_variant in keys if key_setup == setup
                                  and declared_colour(run.layer(key_setup, key_variant).colour) == declared))
    return shade(base, variants.index(variant) if variant in variants else 0)
