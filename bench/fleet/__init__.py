"""Beyond one machine: the same scenario on several hosts (a fleet), and load from another host
(a split run). A host is a place where setups run, reached with the system's OpenSSH client.

    hostsfile   the hosts file (name -> host, user, port, key), validated with file:line errors
    ssh         one OpenSSH master connection per host; commands, streams, copies
    wheel       layerbench as a wheel, built from the installed package (content-hashed)
    wheelhouse  its dependencies as wheels for a host's Python (cached by what they depend on)
    remote      per host: probe, install into a venv there, run, fetch the run folder home
    worker      `bench remote-run`: what runs on a host, talking JSON lines back
    split       the load generator on another host (LoadFn over ssh) and the address to listen on
    orchestrate a fleet run: hosts in parallel, one host's failure recorded against it
    record      fleet.json: which hosts, status per host, errors
    model       a stored fleet as outputs read it: machines side by side, one Comparison
    report      the fleet's report.html; view: its terminal tables and live progress
    check       `bench hosts check`

Reading a stored fleet (record, model, report, view) imports nothing that runs setups.
"""
