"""Pydantic's validation errors of a scenario, worded for the person who wrote the file: one short
line per problem with the file, the line and the field path as the file spells it."""

from __future__ import annotations

from pydantic import ValidationError

MAX_PROBLEMS_SHOWN = 20  # a file of thousands of wrong keys gets these and a count, not a screenful per key


def _is_union_tag(part) -> bool:
    """pydantic names the member of a union it tried ("literal['auto']", "PinningSpec", "int")."""
    return isinstance(part, str) and (part.startswith(("function-", "literal[")) or part in ("int", "str", "float")
                                      or (part[:1].isupper() and part.isidentifier()))


def messages(error: ValidationError, source: str, lines: dict[tuple, int]) -> list[str]:
    """One line per problem, `file:line: field.path: what is wrong (got 'value')`; `lines` maps a
    field path to its line in the file (from bench.scenario.bounded_yaml.line_index), {} for flags."""
    problems = []
    first_with: dict[str, int] = {}  # prefix -> index in problems: thousands of problems stay linear
    items = error.errors()
    # For a union (pinning: auto | {...}), keep the member that got furthest: one message, not one per member.
    by_field: dict[tuple, int] = {}
    for item in items:
        field = tuple(p for p in item["loc"] if not _is_union_tag(p))
        by_field[field[:1]] = max(by_field.get(field[:1], 0), len(item["loc"]))
    items = [item for item in items
             if not any(_is_union_tag(p) for p in item["loc"])
             or len(item["loc"]) == by_field[tuple(p for p in item["loc"] if not _is_union_tag(p))[:1]]]
    for item in items:
        location = tuple(part for part in item["loc"] if not _is_union_tag(part))
        # pydantic puts the shorthand-expanded setup name inside; map back to the file's shape.
        # A key may hold a newline or be huge: repr keeps each problem on one short line.
        where = ".".join(str(part) if str(part).isprintable() and len(str(part)) <= 60 else repr(part)[:60]
                         for part in location) or "(top level)"
        line = None
        for cut in range(len(location), -1, -1):
            if location[:cut] in lines:
                line = lines[location[:cut]]
                break
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see: bench scenarios --help)"
        elif item["type"] == "missing":
            message = "required field is missing"
        found = item.get("input")
        if item["type"] not in ("missing", "extra_forbidden") and isinstance(found, (str, int, float, bool)):
            message += f" (got {str(found)[:60]!r})"
        prefix = f"{source}:{line or '?'}: {where}: "
        same = first_with.get(prefix)
        if same is not None and any(_is_union_tag(p) for p in item["loc"]):
            problems[same] += f", or {message[:1].lower()}{message[1:]}"  # two members of one union
        else:
            first_with.setdefault(prefix, len(problems))
            problems.append(prefix + message)
    if len(problems) > MAX_PROBLEMS_SHOWN:
        more = len(problems) - MAX_PROBLEMS_SHOWN
        problems = problems[:MAX_PROBLEMS_SHOWN] + [f"{source}:?: and {more} more problem{'s' * (more > 1)}"]
    return problems
