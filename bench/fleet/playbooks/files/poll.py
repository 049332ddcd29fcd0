# One look at a run on a host (python3 -I -S poll.py RUN_DIR WAIT_S), as one JSON line: the event
# lines the run wrote since the last look, and whether it has ended. The look that sees the end
# packs the run folder into RUN_DIR.tar for the playbook to fetch. Stdlib only, no site: it runs
# every few seconds on a host that is measuring, so it must cost next to nothing there.
#
# It touches RUN_DIR/heartbeat: the run stops itself when nobody has looked for a while (the
# control host died). It waits up to WAIT_S for something new, so a quiet run costs a look
# every WAIT_S seconds and a busy one is shown as it happens.
import glob, json, os, sys, tarfile, time

run, wait_s = sys.argv[1], float(sys.argv[2])
MAX_BYTES = 1 << 20


def path(name):
    return os.path.join(run, name)


def alive(pid_file):
    try:
        with open(pid_file) as handle:
            return os.path.exists("/proc/" + str(int(handle.read().strip())))
    except (OSError, ValueError):
        return False


def read_exit():
    try:
        with open(path("exit")) as handle:
            return int(handle.read().strip() or -1)
    except (OSError, ValueError):
        return None


if not os.path.isdir(run):  # never started here, or already removed
    print(json.dumps({"lines": [], "finished": True, "exit": None}))
    sys.exit(0)
with open(path("heartbeat"), "a"):
    os.utime(path("heartbeat"))
try:
    with open(path("cursor")) as handle:
        cursor = int(handle.read().strip() or 0)
except (OSError, ValueError):
    cursor = 0
deadline = time.monotonic() + wait_s
while True:
    # Read before the events, so nothing is missed. "pid" is the shell that writes "exit" after the
    # run; "worker.pid" the run itself (the only one when the control drives it over ssh).
    ended = read_exit() is not None or not (alive(path("pid")) or alive(path("worker.pid")))
    try:
        with open(path("events.jsonl"), "rb") as handle:
            handle.seek(cursor)
            chunk = handle.read(MAX_BYTES)
    except OSError:
        chunk = b""
    complete = chunk[:chunk.rfind(b"\n") + 1]
    if complete or ended or time.monotonic() >= deadline:
        break
    time.sleep(0.2)
with open(path("cursor"), "w") as handle:
    handle.write(str(cursor + len(complete)))
lines = complete.decode("utf-8", "replace").splitlines()
finished = ended and len(complete) == len(chunk) and len(chunk) < MAX_BYTES
found = {"lines": lines, "finished": finished, "exit": read_exit() if finished else None}
if finished:  # what the run said last on stderr: the reason when it failed
    try:
        with open(path("stderr.log"), "rb") as handle:
            handle.seek(max(0, os.path.getsize(path("stderr.log")) - 4096))
            found["stderr"] = [line for line in handle.read().decode("utf-8", "replace").splitlines() if line][-5:]
    except OSError:
        pass
    runs = glob.glob(os.path.join(glob.escape(run), "*", "run.json"))
    if len(runs) == 1:
        with tarfile.open(run + ".tar.tmp", "w") as archive:
            folder = os.path.dirname(runs[0])
            archive.add(folder, arcname=os.path.basename(folder))
        os.replace(run + ".tar.tmp", run + ".tar")
        found["packed"] = True
print(json.dumps(found))
