"""One host's run as the control host sees it: the worker's JSON lines (bench.fleet.worker), read
from a pipe (this machine, a split run's target) or from the playbook's watches, turned into
progress events that carry the host's name; a split run's load requests answered; how it ended."""

from __future__ import annotations

import collections
import dataclasses
import json
import subprocess
import threading

from bench.event_wire import event_from_json
from bench.events import HostLog
from bench.fleet.inventory import FleetHost
from bench.load.wire import result_to_dict, spec_from_dict

EXIT_WORDS = {0: "complete", 3: "incomplete", 130: "interrupted"}


class HostRun:
    """One host's run as its worker tells it, line by line (from a pipe, or from the watches)."""

    def __init__(self, fleet, host: FleetHost):
        self.fleet, self.host, self.name = fleet, host, host.name
        self.result: dict = {}
        self.returncode: int | None = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.process: subprocess.Popen | None = None  # a worker driven over a pipe (this machine, a split target)
        self.relay = None  # a split run's load: .run_spec(port, spec, generator)
        self.listen_address: str | None = None
        self.stop_argv: list[str] | None = None  # a split target: the one-shot ssh that asks its run to stop

    def handle(self, raw: str | bytes) -> None:
        """One line of the worker: hello, an event of its runner, a load request, or its result."""
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        try:
            message = json.loads(text)
            kind = message.get("kind")
        except (ValueError, AttributeError):
            if text.strip():
                self.fleet.emit(HostLog(text.rstrip(), host=self.name))
            return
        if kind == "event":
            event = event_from_json(message.get("event"))  # of a kind this version does not know: its message
            if event is not None:
                self.fleet.emit(dataclasses.replace(event, host=self.name))
        elif kind == "load_request":
            self._answer(message)
        elif kind == "result":
            self.result = message

    def _answer(self, request: dict) -> None:
        """Run the target's load on the load host and send the result back on its stdin."""
        try:
            spec = spec_from_dict(request.get("spec"))
            if self.relay is None or spec.host != self.listen_address:  # load goes only to the split address
                raise RuntimeError(f"refused a load request for {spec.host}: not this split run's address")
            result = self.relay.run_spec(int(request["port"]), spec, str(request.get("generator") or "builtin"))
            reply = {"kind": "load_result", "result": result_to_dict(result)}
        except Exception as error:  # the trial fails with this message; the run goes on
            reply = {"kind": "load_error", "message": str(error) or type(error).__name__}
        try:
            self.process.stdin.write(json.dumps(reply).encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the host is gone; its stream ends and the failure is recorded there

    def stream(self, process: subprocess.Popen) -> None:
        """Read a worker's stdout to its end (stderr beside it, as log lines); its exit status."""
        self.process = process
        reader = threading.Thread(target=self._read_stderr, name=f"fleet-{self.name}-stderr", daemon=True)
        reader.start()
        try:
            for raw in process.stdout:
                self.handle(raw)
            self.returncode = process.wait()
            reader.join(timeout=5)
        finally:
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()

    def _read_stderr(self) -> None:
        try:
            for raw in self.process.stderr:
                self.said(raw.decode(errors="replace").rstrip())
        except (ValueError, OSError):  # closed under us: the host's run is over
            pass

    def said(self, line: str) -> None:
        if line:
            self.stderr_tail.append(line)
            self.fleet.emit(HostLog(line, host=self.name))

    def stop(self) -> None:
        """Ask a worker on a pipe to stop like Ctrl-C (it removes what it started)."""
        if self.process is None or self.process.poll() is not None:
            return
        if self.stop_argv is None:
            self.process.terminate()
            return
        try:  # over ssh: its folder's `stop` file (bench.fleet.worker), then its stream ends by itself
            subprocess.run(self.stop_argv, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError):
            self.process.terminate()

    def ended(self) -> tuple[str, str | None]:
        """(status, error) from the worker's exit status and result."""
        status = EXIT_WORDS.get(self.returncode, "failed")
        if status == "complete":
            return status, None
        if status == "incomplete":
            return status, f"{self.result.get('failed_trials')} trial(s) failed"
        if status == "interrupted":
            return status, "interrupted"
        if self.result.get("error"):  # the worker's own reason (nothing measured), ssh or not
            return "failed", str(self.result["error"])
        said = self.stderr_tail[-1] if self.stderr_tail else "no message"
        return "failed", f"bench remote-run exited {self.returncode}: {said}"
