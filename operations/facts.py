"""Facts vpskit needs that pyinfra does not ship.

Each fact is one round trip; where several values belong to one concern they
are read by one command.
"""

from __future__ import annotations

import shlex

from pyinfra.api import FactBase
from pyinfra.facts.server import Users


class OutputLines(FactBase):
    """
    A fact whose value is its command's non-empty output lines, stripped (``[]`` without output).

    Subclasses give only ``command``.
    """

    @staticmethod
    def default():
        return []

    def process(self, output):
        return [line.strip() for line in output if line.strip()]


class FileState(FactBase):
    """
    Returns the sha256, mode and owner of a file in one round trip, or None.

    .. code:: python

        {"sha256": "…", "mode": "640", "user": "root", "group": "root"}
    """

    def command(self, path):
        p = shlex.quote(path)
        # Hashed from stdin: sha256sum escapes some names it prints (a backslash in front).
        return f"if [ -f {p} ]; then sha256sum < {p} | cut -d' ' -f1; stat -c '%a %U %G' {p}; fi"

    def process(self, output):
        if len(output) < 2:
            return None
        mode, user, group = output[1].split()
        return {"sha256": output[0].strip(), "mode": mode, "user": user, "group": group}


class NamedUsers(Users):
    """
    Returns pyinfra's ``Users`` entries of the named users only (a user that does not exist is left out).

    ``Users`` reads every account, with its last login, which makes it the slowest
    fact of a re-run; an operation that looks up one user gets the same entry here.

    .. code:: python

        host.get_fact(NamedUsers, users=("appuser",))  # {"appuser": {"home": "/home/appuser", ...}}
    """

    def command(self, users):
        names = " ".join(shlex.quote(u) for u in users)
        # The loop body of pyinfra's Users, for these names: the same line per user for its process().
        return (
            f'for i in {names}; do ENTRY=$(grep "^$i:" /etc/passwd) || continue; '
            'LASTLOG=$( ( (lastlog -u "$i" || lastlogin "$i") 2>/dev/null) | grep "^$i" | tr -s \' \'); '
            'PASSWORD=$( (grep "^$i:" /etc/shadow || grep "^$i:" /etc/master.passwd) 2>/dev/null | cut -d: -f2); '
            'echo "$ENTRY|$(id -gn "$i")|$(id -Gn "$i")|$LASTLOG|$PASSWORD"; done'
        )


# Where AptUpgradable keeps its last answer, and what that answer depends on.
APT_UPGRADABLE_CACHE = "/var/cache/vpskit/apt-upgradable"
APT_INPUTS = ("/var/lib/dpkg/status", "/etc/apt", "/var/lib/apt/lists")


class AptUpgradable(FactBase):
    """
    Returns the packages an ``apt-get upgrade``/``dist-upgrade`` would install or upgrade.

    Simulated, without taking apt's lock. Packages apt keeps back (Ubuntu's phased
    updates) are not listed, so a host with nothing to do reports nothing.

    The simulation takes seconds. Its answer is kept on the host (APT_UPGRADABLE_CACHE)
    under a key made of the names, times and sizes of everything it depends on
    (APT_INPUTS: dpkg's status, apt's settings and package lists), and given again
    while that key is unchanged; a failed simulation is never kept.
    """

    slow = True  # a simulation whenever apt's state changed: not read again with the others after a change (snapshot.py)

    def requires_command(self, full=True):
        return "apt-get"

    def command(self, full=True):
        verb = "dist-upgrade" if full else "upgrade"
        cache = shlex.quote(f"{APT_UPGRADABLE_CACHE}-{verb}")
        inputs = " ".join(shlex.quote(p) for p in APT_INPUTS)
        store = f'mkdir -p $(dirname {cache}) && printf \'%s\\n%s\\n\' "$key" "$out" > {cache}.tmp && mv -f {cache}.tmp {cache}'
        return (
            f"key=$(find {inputs} -maxdepth 2 -printf '%p %T@ %s\\n' 2>/dev/null | md5sum | cut -c1-32); "
            f'if [ "$(head -n1 {cache} 2>/dev/null)" = "$key" ]; then tail -n +2 {cache}; '
            f"elif sim=$(LC_ALL=C apt-get -s -o Debug::NoLocking=1 {verb} </dev/null); then "
            f"out=$(printf '%s\\n' \"$sim\" | grep '^Inst '); {{ {store}; }} 2>/dev/null; printf '%s\\n' \"$out\"; fi"
        )

    @staticmethod
    def default():
        return []

    def process(self, output):
        return [line.split()[1] for line in output if line.startswith("Inst ")]


class AptLockHolders(FactBase):
    """
    Returns the PIDs of processes holding dpkg's or apt's locks (empty when free).
    """

    locks = (
        "/var/lib/dpkg/lock-frontend",
        "/var/lib/dpkg/lock",
        "/var/lib/apt/lists/lock",
        "/var/cache/apt/archives/lock",
    )

    def command(self):
        # /proc/locks lists every POSIX lock of the kernel by inode; match the lock files' inodes.
        # A holder outside this host's PID namespace (another container on the same kernel,
        # whose files may share the inode numbers of one image) shows as PID 0: not ours.
        paths = " ".join(shlex.quote(p) for p in self.locks)
        return (
            f'for f in {paths}; do [ -e "$f" ] && stat -c \'%i\' "$f"; done | '
            'while read ino; do awk -v ino="$ino" \'{split($6, a, ":"); if (a[3] == ino && $5 > 0) print $5}\' /proc/locks; done '
            "| sort -u"
        )

    @staticmethod
    def default():
        return []

    def process(self, output):
        return [int(x) for x in output if x.strip().isdigit()]
