"""Measurement checks: each asks one question about layerbench's own figures (does the gate have power,
is the built-in generator the bottleneck, does Ctrl-C leave anything behind...) and answers it by
measuring on this machine. Run one from the checkout: `.venv/bin/python -m tools.<name> --help`.

They are developer tools, not part of the installed `bench` package; tests/unit/test_tools.py runs
each one for real on something tiny (stand-ins or a short bare run), so a change that breaks a check
fails a unit test. Host and developer set-up (host-setup.sh, register_runtimes.py, testhosts.sh)
stays in scripts/.
"""
