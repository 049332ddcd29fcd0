# What a host has, as one JSON line: its Python, glibc and CPU (the wheels must fit), the user the
# run goes as (after become), its home (where layerbench lives), and the layerbench in its venv.
import getpass, json, os, platform, sys

version = "%d.%d" % sys.version_info[:2]
home = os.path.expanduser("~")
base = os.path.join(home, ".cache", "layerbench", "fleet")
try:
    with open(os.path.join(base, "venv-" + version, ".layerbench-version")) as mark:
        installed = mark.read().strip()
except OSError:
    installed = ""
print(json.dumps({"python": version, "python_full": platform.python_version(), "glibc": platform.libc_ver()[1],
                  "arch": platform.machine(), "user": getpass.getuser(), "home": home, "base": base,
                  "venv": os.path.join(base, "venv-" + version), "installed": installed,
                  "hostname": platform.node(), "old": sys.version_info < (3, 11)}))
