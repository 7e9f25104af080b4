"""sshd's host keys and DH moduli as ssh-audit's hardened policies want them, and the controller's known_hosts kept in step.

A hardened policy asks for a 4096-bit RSA host key (ed25519 kept) and no group-exchange
modulus under 3072 bits. Replacing the RSA key changes its fingerprint: the controller's
known_hosts lines for the host are brought in step around the change, so neither a later
run nor a run killed half-way stops at "host key changed".

    host_keys_hardened(4096, 3072, known_hosts="~/.ssh/known_hosts", names=["[203.0.113.7]:2222"])
"""

from __future__ import annotations

import os

from pyinfra import host, logger
from pyinfra.api import FactBase, FunctionCommand, StringCommand, deploy, operation

from .knownhosts import refreshed
from .snapshot import planned, snapshot_fact
from .ssh import apply_command

MODULI = "/etc/ssh/moduli"
RSA_KEY = "/etc/ssh/ssh_host_rsa_key"
# known_hosts key types for the host key algorithms sshd may offer.
KEY_TYPES = {"ssh-ed25519": "ssh-ed25519", "rsa-sha2-512": "ssh-rsa", "rsa-sha2-256": "ssh-rsa"}


class HostKeys(FactBase):
    """
    Returns sshd's host keys, read from the private key files (what sshd really loads).

    .. code:: python

        {"ssh-rsa": {"bits": 4096, "fingerprint": "SHA256:...", "key": "AAAA..."}, "ssh-ed25519": {...}}
    """

    def requires_command(self):
        return "ssh-keygen"

    def command(self):
        return (
            'for f in /etc/ssh/ssh_host_*_key; do [ -f "$f" ] || continue; '
            'echo "$(ssh-keygen -lf "$f" | cut -d\' \' -f1,2) $(ssh-keygen -yf "$f" | cut -d\' \' -f1,2)"; done'
        )

    def process(self, output):
        return parse_host_keys(output)


def parse_host_keys(lines) -> dict:
    keys = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 4 and parts[0].isdigit():
            keys[parts[2]] = {"bits": int(parts[0]), "fingerprint": parts[1], "key": parts[3]}
    return keys


class WeakModuli(FactBase):
    """Returns how many group-exchange moduli in /etc/ssh/moduli are smaller than ``min_bits``."""

    def command(self, min_bits=3072):
        return f"awk '$1 !~ /^#/ && NF >= 7 && $5 + 1 < {int(min_bits)}' {MODULI} 2>/dev/null | wc -l"

    def process(self, output):
        return int(output[0]) if output and output[0].strip().isdigit() else 0


def offered_keys(keys: dict, host_key_algorithms) -> dict[str, str]:
    """{known_hosts key type: base64 key} of the host keys sshd offers with ``host_key_algorithms``."""
    types = {KEY_TYPES[a] for a in host_key_algorithms if a in KEY_TYPES}
    return {t: k["key"] for t, k in keys.items() if t in types}


def regenerate_rsa_command(bits: int) -> str:
    """A new RSA host key of ``bits``, swapped in private key first (the fact reads the private key)."""
    new = f"{RSA_KEY}.vpskit-new"
    return (
        f"rm -f {new} {new}.pub && ssh-keygen -q -t rsa -b {int(bits)} -N '' -C \"root@$(hostname)\" -f {new} && "
        f"chmod 600 {new} && mv -f {new} {RSA_KEY} && mv -f {new}.pub {RSA_KEY}.pub"
    )


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def _write_known_hosts(path: str, names, keys: dict[str, str], add: bool = True) -> bool:
    """Bring the lines for ``names`` in ``path`` in step with ``keys``; whether the file changed."""
    text = _read(path)
    new = refreshed(text, names, keys, add)
    if new == text:
        return False
    # A run killed mid-write must not leave a cut file: write aside, then rename.
    tmp = f"{path}.vpskit-new"
    with open(tmp, "w") as f:
        f.write(new)
    os.chmod(tmp, os.stat(path).st_mode & 0o777)
    os.replace(tmp, path)
    return True


def prune_moduli_command(min_bits: int, path: str = MODULI) -> str:
    """Keep comment lines and moduli of ``min_bits`` or more (field 5 is the size minus one)."""
    return f"awk '$1 ~ /^#/ || $5 + 1 >= {int(min_bits)}' {path} > {path}.vpskit && chmod 644 {path}.vpskit && mv -f {path}.vpskit {path}"


@planned(lambda min_bits=3072, **_: [(WeakModuli, {"min_bits": min_bits})])
@operation()
def moduli_pruned(min_bits: int = 3072):
    """
    Ensure /etc/ssh/moduli holds no Diffie-Hellman group-exchange modulus under ``min_bits``.

    + min_bits: the smallest modulus kept (ssh-audit's hardened policies: 3072)

    **Example:**

    .. code:: python

        moduli_pruned(min_bits=3072)
    """
    weak = snapshot_fact(WeakModuli, min_bits=min_bits)
    if not weak:
        host.noop(f"no modulus under {min_bits} bits")
        return
    yield prune_moduli_command(min_bits)


@planned(lambda *_, **__: [(HostKeys, {})])
@operation()
def rsa_host_key(
    bits: int = 4096,
    host_key_algorithms=("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"),
    known_hosts: str = "",
    names=(),
    socket_mode: bool = False,
):
    """
    Ensure sshd's RSA host key has ``bits`` (regenerated once; the other keys stay) and the
    controller's known_hosts lists the keys sshd offers.

    The new key's fingerprints are printed when it is made. Stale known_hosts lines for the
    host are dropped before the key changes (the unchanged ed25519 key is listed first), so
    a run killed in between still gets in; the new key is recorded after.

    + bits: the RSA key size wanted (ssh-audit's hardened policies: 4096)
    + host_key_algorithms: what sshd offers (its HostKeyAlgorithms)
    + known_hosts: the controller's known_hosts file for this host ("" : none, e.g. @docker)
    + names: the names the host is filed under there (``[address]:port``)
    + socket_mode: sshd is socket-activated (every connection reads the keys anew)

    **Example:**

    .. code:: python

        rsa_host_key(4096, known_hosts="~/.ssh/known_hosts", names=["[203.0.113.7]:2222"])
    """
    keys = snapshot_fact(HostKeys)
    offered = offered_keys(keys, host_key_algorithms)
    rsa = keys.get("ssh-rsa")
    if (rsa and rsa["bits"] >= bits) or not any(KEY_TYPES.get(a) == "ssh-rsa" for a in host_key_algorithms):
        if known_hosts and names:
            # Stale lines only (a run killed after the key change); keys are added by the run that makes them.
            text = _read(known_hosts)
            if refreshed(text, names, offered, add=False) != text:
                yield FunctionCommand(_update_known_hosts, (known_hosts, names, offered, False), {})
                return
        host.noop(f"RSA host key has {rsa['bits']} bits" if rsa else "sshd offers no RSA host key")
        return

    if known_hosts and names:
        staying = {t: k for t, k in offered.items() if t != "ssh-rsa"}
        yield FunctionCommand(_update_known_hosts, (known_hosts, names, staying), {})
    yield StringCommand(regenerate_rsa_command(bits))
    yield StringCommand(apply_command(socket_mode, listener_changes=False))
    yield FunctionCommand(_record_new_keys, (tuple(host_key_algorithms), known_hosts, tuple(names)), {})


def _update_known_hosts(path: str, names, keys: dict[str, str], add: bool = True) -> None:
    if _write_known_hosts(path, names, keys, add):
        logger.warning(f"vpskit: updated the host keys of {', '.join(names)} in {path}")


def _record_new_keys(state, host, host_key_algorithms, known_hosts: str, names) -> None:
    """After the key change: print the keys sshd now offers and record them in known_hosts."""
    ok, output = host.run_shell_command(HostKeys().command(), _sudo=bool(host.data.get("_sudo")))
    keys = parse_host_keys(output.stdout_lines) if ok else {}
    for key_type, k in sorted(keys.items()):
        if key_type in offered_keys(keys, host_key_algorithms):
            logger.warning(f"vpskit: sshd host key {key_type} ({k['bits']} bits) {k['fingerprint']}")
    if known_hosts and names and keys:
        _update_known_hosts(known_hosts, names, offered_keys(keys, host_key_algorithms))


@deploy("SSH host keys")
def host_keys_hardened(
    rsa_bits: int = 4096,
    min_modulus_bits: int = 3072,
    host_key_algorithms=("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256"),
    known_hosts: str = "",
    names=(),
    socket_mode: bool = False,
):
    """
    Ensure sshd's keys meet a hardened policy: an RSA host key of ``rsa_bits``, no DH moduli under ``min_modulus_bits``.

    + rsa_bits: RSA host key size (``SshPolicy.rsa_bits``)
    + min_modulus_bits: smallest group-exchange modulus kept (``SshPolicy.min_modulus_bits``)
    + host_key_algorithms, known_hosts, names, socket_mode: see ``rsa_host_key``

    **Example:**

    .. code:: python

        host_keys_hardened(4096, 3072, known_hosts="~/.ssh/known_hosts", names=["[203.0.113.7]:2222"])
    """
    rsa_host_key(
        name=f"RSA host key of {rsa_bits} bits",
        bits=rsa_bits,
        host_key_algorithms=host_key_algorithms,
        known_hosts=known_hosts,
        names=names,
        socket_mode=socket_mode,
    )
    moduli_pruned(name=f"No DH moduli under {min_modulus_bits} bits", min_bits=min_modulus_bits)
