"""Beyond one machine: the same scenario on several hosts (a fleet), and load from another host
(a split run). The hosts come from an Ansible inventory; the work on them is a playbook run
through ansible-runner.

    inventory   the inventory (Ansible's own parser): --hosts, --limit, `local`, each host's vars
    guard       what an inventory nobody named may not do: run a command on this machine
    legacy      the old hosts.yaml: refused, and `bench hosts convert`
    playbooks/  fleet.yml (probe, install, run, watch, fetch, clean, stop, check) and its scripts
    engine      the playbook through ansible-runner; its events per host, Ansible's reasons
    localdirs   the private /tmp/lb-ssh-* folder of one command; the dead ones for bench clean
    wheel       layerbench as a wheel, built from the installed package (content-hashed)
    wheelhouse  its dependencies as wheels for a host's Python (cached by what they depend on)
    worker      `bench remote-run`: what runs on a host, talking JSON lines back
    orchestrate a fleet run: hosts in parallel, one host's failure recorded against it
    split       a split run: Ansible prepares, two direct ssh channels (channel) carry the trials
    cleanup     `bench clean` for fleets whose runner was killed
    record      fleet.json: which hosts, status per host, errors, the runner
    model       a stored fleet as outputs read it: machines side by side, one Comparison
    report      the fleet's report.html; view: its terminal tables and live progress
    check       `bench hosts check`

Reading a stored fleet (record, model, report, view) imports nothing that runs setups, and no Ansible.
"""
