"""What `bench doctor` finds: which setups can run on this machine and, for each that cannot, the
one command that fixes it; as plain data, so `bench doctor --json` on a remote host answers
`bench hosts check` on the control host."""

from __future__ import annotations

import shutil

from rich.console import Console
from rich.text import Text

from bench import machine
from bench.outputs.terminal import safe

OPTIONAL_TOOLS = (("wrk", "apt-get install wrk"), ("chromium", "apt-get install chromium"))
DOCTOR_VERSION = 1


def doctor_report() -> dict:
    """{"machine", "setups": [{setup, ok, stack, reason, lines}], "broken": [...], "apps": [...], "tools": [...]}."""
    from bench.apps import registry as apps
    from bench.setups import registry

    setups = []
    for cls in registry.classes():
        try:
            reason = cls.check()
        except Exception as error:  # doctor must report, not crash
            reason = f"check failed: {error}"
        try:
            lines = cls.doctor_lines()
        except Exception as error:
            lines = [f"doctor_lines failed: {error}"]
        setups.append({"setup": cls.name, "ok": reason is None, "stack": cls.stack, "reason": reason,
                       "lines": list(lines)})
    broken = [{"module": module, "kind": kind, "problem": str(problem)}
              for kind, found in (("setup", registry.broken()), ("app", apps.broken())) for module, problem in found.items()]
    tools = [{"tool": tool, "path": shutil.which(tool), "fix": fix} for tool, fix in OPTIONAL_TOOLS]
    # The apps a scenario names by kind, the default first (a user's image is checked when a scenario names it).
    named = sorted(apps.named_kinds(), key=lambda kind: not apps.get(kind).default)
    shipped = [{"app": kind, "ok": (reason := apps.get(kind).check()) is None, "reason": reason,
                "description": apps.get(kind).description} for kind in named]
    return {"doctor_version": DOCTOR_VERSION, "machine": machine.describe(), "setups": setups, "broken": broken,
            "apps": shipped, "tools": tools}


def print_doctor(console: Console, found: dict) -> None:
    """`bench doctor` as lines: ok/no per setup with its fix, then the optional tools."""
    for setup in found["setups"]:
        mark = Text("ok  ", style="green") if setup["ok"] else Text("no  ", style="red")
        console.print(mark.append(safe(f"{setup['setup']:10} {setup['stack'] if setup['ok'] else setup['reason']}")))
        for line in setup["lines"]:
            console.print(safe(f"      {line}", "dim"))
    for broken in found["broken"]:
        console.print(Text("no  ", style="red").append(safe(f"{broken['module']:10} {broken.get('kind', 'setup')} module "
                                                            f"failed to load: {broken['problem']}")))
    for app in found.get("apps", []):
        mark = Text("ok  ", style="green") if app["ok"] else Text("no  ", style="red")
        console.print(mark.append(safe(f"{'app ' + app['app']:10} {app['description'] if app['ok'] else app['reason']}")))
    for tool in found["tools"]:
        mark = Text("ok  ", style="green") if tool["path"] else Text("--  ", style="yellow")
        console.print(mark.append(safe(f"{tool['tool']:10} {tool['path'] or 'optional, not installed: ' + tool['fix']}")))
