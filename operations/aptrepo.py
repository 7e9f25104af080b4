"""Third-party apt repositories: a signing key pinned by fingerprint and a deb822 source."""

from __future__ import annotations

import shlex
from io import StringIO

from pyinfra import host
from pyinfra.api import FactBase, StringCommand, deploy, operation
from pyinfra.operations import apt, files
from pyinfra.operations.util import any_changed

from .render import render

KEYRINGS_DIR = "/etc/apt/keyrings"
SOURCES_DIR = "/etc/apt/sources.list.d"

# The primary key fingerprints in a key file, one per line: gpg's machine-readable
# listing has a "pub" record followed by its "fpr" record.
_PRIMARY_FPRS = 'awk -F: \'$1=="pub"{p=1;next} p&&$1=="fpr"{print $10;p=0}\''


class KeyFingerprints(FactBase):
    """
    Returns the primary key fingerprints in an OpenPGP key file (empty when there is no file).
    """

    def command(self, path):
        p = shlex.quote(path)
        return (
            f"if [ -f {p} ]; then t=$(mktemp -d) && GNUPGHOME=$t gpg --batch --show-keys --with-colons {p} 2>/dev/null"
            f' | {_PRIMARY_FPRS}; rm -rf "$t"; fi'
        )

    @staticmethod
    def default():
        return []

    def process(self, output):
        return [line.strip().upper() for line in output if line.strip()]


def fetch_pinned_key_command(url: str, fingerprint: str, dest: str) -> str:
    """The shell that downloads a key, checks it holds ``fingerprint`` and installs only that key at ``dest``.

    A download without the pinned key fails the command and leaves ``dest`` as it was.
    """
    t = '"$t"'
    fpr = fingerprint.upper()
    message = shlex.quote(f"vpskit: the key at {url} is not the pinned key {fpr}; nothing installed. Found:")
    return (
        f"t=$(mktemp -d) && trap 'rm -rf \"$t\"' EXIT && "
        f"curl -fsSL --retry 3 -o {t}/download {shlex.quote(url)} && "
        f"fprs=$(GNUPGHOME={t} gpg --batch --show-keys --with-colons {t}/download | {_PRIMARY_FPRS}) && "
        f"if ! printf '%s\\n' \"$fprs\" | grep -qx {fpr}; then echo {message} $fprs >&2; exit 1; fi && "
        f"GNUPGHOME={t} gpg --batch --quiet --import {t}/download && "
        f"GNUPGHOME={t} gpg --batch --export {fpr} > {t}/key.gpg && "
        f"install -D -m 644 {t}/key.gpg {shlex.quote(dest)}"
    )


@operation()
def pinned_key(url: str, fingerprint: str, dest: str):
    """
    Ensure an apt signing key, fetched on the host and pinned by its full fingerprint, is installed.

    The key is downloaded by the host, checked against ``fingerprint`` before use
    and written as a keyring holding that key alone. No-op when ``dest`` already
    holds exactly that key.

    + url: where the host downloads the key (armored or binary)
    + fingerprint: the full 40-hex-digit fingerprint the key must have
    + dest: keyring file apt's ``Signed-By`` points at

    **Example:**

    .. code:: python

        pinned_key(
            name="NodeSource signing key",
            url="https://deb.nodesource.com/gpgkey/nodesource-repo.gpg.key",
            fingerprint="6F71F525282841EEDAF851B42F59B5F99B1BE0B4",
            dest="/etc/apt/keyrings/nodesource.gpg",
        )
    """
    if host.get_fact(KeyFingerprints, path=dest) == [fingerprint.upper()]:
        host.noop(f"{dest} holds the key {fingerprint}")
        return
    yield StringCommand(fetch_pinned_key_command(url, fingerprint, dest))


def source_file_text(comment: str, uri: str, suite: str, components: str, key: str) -> str:
    return render("apt-source.sources.j2", comment=comment, uri=uri, suite=suite, components=components, key=key)


@deploy("Apt repository")
def apt_repository(name: str, comment: str, key_url: str, fingerprint: str, uri: str, suite: str, components: str = "main"):
    """
    Ensure a third-party apt repository is configured: pinned key, deb822 source, fresh index.

    + name: file name stem (``/etc/apt/sources.list.d/NAME.sources``, ``/etc/apt/keyrings/NAME.gpg``)
    + comment: what the repository is, for the source file's header
    + key_url: where the host fetches the signing key
    + fingerprint: the signing key's full fingerprint
    + uri: the repository's base URI
    + suite: the suite (release codename)
    + components: the components to use

    **Example:**

    .. code:: python

        apt_repository("deadsnakes", "Python builds for Ubuntu", KEY_URL, FPR,
                       "https://ppa.launchpadcontent.net/deadsnakes/ppa/ubuntu", "noble")
    """
    key = f"{KEYRINGS_DIR}/{name}.gpg"
    key_op = pinned_key(name=f"Signing key of {name}", url=key_url, fingerprint=fingerprint, dest=key)
    source_op = files.put(
        name=f"Apt source {name}",
        src=StringIO(source_file_text(comment, uri, suite, components, key)),
        dest=f"{SOURCES_DIR}/{name}.sources",
        mode="644",
    )
    apt.update(name=f"Update apt cache for {name}", _if=any_changed(key_op, source_op))
