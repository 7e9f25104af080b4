"""Which sshd algorithms each supported release runs: ssh-audit's hardened server policies.

ssh-audit (https://github.com/jtesta/ssh-audit) ships one "Hardened ..." server policy per
release; a host passes it only when sshd offers exactly the policy's key exchanges, ciphers
and MACs, in the policy's order, RSA host keys of 4096 bits and no group-exchange modulus
under 3072 bits. The lists below are those policies' (ssh-audit 3.9), less the two markers
sshd appends by itself (``ext-info-s``, ``kex-strict-s-v00@openssh.com``).

The release is ``Distro.key`` (``ubuntu2404``, ``debian12``, ...).

The policies of the OpenSSH 10 releases (Ubuntu 26.04, Debian 13) allow post-quantum key
exchanges only, and pyinfra's SSH library (paramiko) speaks none of them: a host offering
only those would shut vpskit itself out (its login proof catches that and keeps the old way
in). There vpskit offers one more key exchange after the policy's, curve25519-sha256@libssh.org,
so every client that can do post-quantum still does, and ssh-audit reports that one addition.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SshPolicy:
    name: str  # the ssh-audit policy this list passes (``ssh-audit -P NAME``)
    kex: tuple[str, ...]
    ciphers: tuple[str, ...]
    macs: tuple[str, ...]
    host_key: tuple[str, ...] = ("ssh-ed25519", "rsa-sha2-512", "rsa-sha2-256")
    # Offered after the policy's key exchanges so that pyinfra (paramiko) can log in.
    controller_kex: tuple[str, ...] = ()
    rsa_bits: int = 4096
    min_modulus_bits: int = 3072  # group-exchange moduli smaller than this are removed

    @property
    def offered_kex(self) -> tuple[str, ...]:
        """The key exchanges sshd offers: the policy's, then the ones vpskit's own client needs."""
        return (*self.kex, *self.controller_kex)


# The cipher list every hardened policy shares.
_CIPHERS = (
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-gcm@openssh.com",
    "aes128-ctr",
)
_MACS_512_FIRST = ("hmac-sha2-512-etm@openssh.com", "hmac-sha2-256-etm@openssh.com", "umac-128-etm@openssh.com")
_MACS_256_FIRST = ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com")
# OpenSSH 8.9-9.x: a post-quantum hybrid, curve25519, then finite-field Diffie-Hellman (4096 and 8192 bits, group exchange).
_KEX_OPENSSH_9 = (
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
)
# OpenSSH 10: post-quantum key exchanges only (no group exchange left to harden).
_KEX_POST_QUANTUM = ("mlkem768x25519-sha256", "sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com")
# The one key exchange of those policies' era that paramiko 4 speaks.
_PARAMIKO_KEX = ("curve25519-sha256@libssh.org",)

POLICIES: dict[str, SshPolicy] = {
    "ubuntu2204": SshPolicy(
        "Hardened Ubuntu Server 22.04 LTS (version 6)",
        kex=_KEX_OPENSSH_9,
        ciphers=_CIPHERS,
        macs=_MACS_256_FIRST,
    ),
    "ubuntu2404": SshPolicy(
        "Hardened Ubuntu Server 24.04 LTS (version 2)",
        kex=(
            "sntrup761x25519-sha512@openssh.com",
            "curve25519-sha256",
            "curve25519-sha256@libssh.org",
            "diffie-hellman-group18-sha512",
            "diffie-hellman-group-exchange-sha256",
            "diffie-hellman-group16-sha512",
        ),
        ciphers=_CIPHERS,
        macs=_MACS_512_FIRST,
    ),
    "ubuntu2604": SshPolicy(
        "Hardened Ubuntu Server 26.04 LTS (version 1)",
        kex=_KEX_POST_QUANTUM,
        ciphers=_CIPHERS,
        macs=_MACS_512_FIRST,
        controller_kex=_PARAMIKO_KEX,
    ),
    "debian12": SshPolicy(
        "Hardened Debian 12 (version 3)",
        kex=("sntrup761x25519-sha512", *_KEX_OPENSSH_9),
        ciphers=_CIPHERS,
        macs=_MACS_256_FIRST,
    ),
    "debian13": SshPolicy(
        "Hardened Debian 13 (version 1)",
        kex=_KEX_POST_QUANTUM,
        ciphers=_CIPHERS,
        macs=_MACS_512_FIRST,
        controller_kex=_PARAMIKO_KEX,
    ),
}
# A release without a policy of its own gets the newest one, cut down to what its OpenSSH knows.
NEWEST = POLICIES["debian13"]


def release_policy(release: str) -> SshPolicy:
    """The hardened policy of ``release`` (a ``Distro.key``), or the newest one for a release without its own."""
    return POLICIES.get(release, NEWEST)
