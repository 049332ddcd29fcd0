"""The machine block: which tools' versions a run records, as the setups declare them."""

from __future__ import annotations

import sys

import pytest

from bench import machine
from bench.setups import registry
from bench.setups.base import Setup
from bench.tool_versions import Tool, versions_of

# The keys every run has stored since format 1; a run of today must store the same ones.
STORED_VERSION_KEYS = {"layerbench", "numpy", "psutil", "docker_sdk", "uvloop", "qemu", "wrk"}


def test_a_run_records_the_same_tools_as_before_now_that_setups_declare_theirs():
    versions = machine.describe()["versions"]
    assert set(versions) == STORED_VERSION_KEYS
    assert versions["psutil"] == machine.OWN_TOOLS[1].version()


def test_the_container_and_vm_setups_declare_the_tools_they_drive():
    assert [tool.key for tool in registry.get("container").tools] == ["docker_sdk"]
    assert [tool.key for tool in registry.get("vm").tools] == ["qemu"]


def test_the_vm_records_the_version_of_the_qemu_it_boots():
    from bench.setups.vm import QEMU_VERSION
    from bench.setups.vm.boot import QEMU

    assert QEMU_VERSION[0] == QEMU


class _SetupWithATool(Setup):
    name = "with-a-tool"
    stack = "app -> a tool -> host kernel"
    narration = "a setup that declares a tool"
    tools = (Tool("interpreter_of_tests", command=(sys.executable, "--version")),)

    def _launch(self):  # never started: only its declaration is read
        raise NotImplementedError

    def _terminate(self, instance):
        raise NotImplementedError


def test_a_registered_setups_tools_join_the_machine_record():
    registry.register(_SetupWithATool)
    try:
        versions = machine.describe()["versions"]
    finally:
        registry.unregister(_SetupWithATool.name)
    assert versions["interpreter_of_tests"].startswith("Python ")
    assert "interpreter_of_tests" not in machine.describe()["versions"]


def test_a_missing_tool_is_recorded_as_none_and_the_first_tool_of_a_key_wins():
    missing = Tool("missing", command=("layerbench-no-such-command",))
    assert versions_of([missing, Tool("missing", distribution="psutil")]) == {"missing": None}
    assert versions_of([Tool("gone", distribution="layerbench-no-such-distribution")]) == {"gone": None}


def test_a_tool_is_a_distribution_or_a_command():
    with pytest.raises(ValueError, match="not both or neither"):
        Tool("both", distribution="numpy", command=("numpy",))
    with pytest.raises(ValueError, match="not both or neither"):
        Tool("neither")
