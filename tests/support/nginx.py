"""deploy/psp/nginx.conf as a real nginx in front of a PSP: the shipped site
with only its ports, paths and certificate swapped (``site``), inside a
main configuration whose pid, logs and temporary files are all in the
test's folder, served by one non-daemon nginx process on ephemeral
loopback ports, with TLS from a CA made for the test (``make_ca``)."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.support.broker import free_port, wait_for_port
from tests.support.process import REPO, end_process

SITE = REPO / "deploy" / "psp" / "nginx.conf"
INSTALL_HINT = (
    "nginx is not installed; the tests run deploy/psp/nginx.conf in a real one. Install it"
    " with `sudo apt-get install nginx-light` (scripts/ensure-system-deps does this as root)."
)


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        raise RuntimeError(INSTALL_HINT)
    return found


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """What a client that trusts only the test's CA checks the server with."""
        return ssl.create_default_context(cafile=str(self.ca))


def make_ca(directory: Path) -> Tls:
    """A CA, and a certificate it signs for 127.0.0.1 and localhost, valid
    for a day."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scan2pay test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    tls = Tls(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    tls.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    tls.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    tls.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tls.key.chmod(0o600)
    return tls


def _swap(text: str, old: str, new: str) -> str:
    """``old`` replaced by ``new``; ``old`` must be in the text, so that a
    change to the shipped file cannot leave the test on another one."""
    if old not in text:
        raise AssertionError(f"deploy/psp/nginx.conf no longer has {old!r}")
    return text.replace(old, new)


def site(
    *, psp_port: int, http_port: int, https_port: int, tls: Tls, access_log: Path
) -> str:  # fmt: skip
    """The shipped site with the test's ports, certificate and log: nothing
    else is changed. The IPv6 listeners go, as the test listens on
    127.0.0.1 only."""
    text = SITE.read_text()
    text = _swap(text, "server 127.0.0.1:8080;", f"server 127.0.0.1:{psp_port};")
    text = _swap(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _swap(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    text = _swap(text, "    listen [::]:80;\n", "")
    text = _swap(text, "    listen [::]:443 ssl http2;\n", "")
    text = _swap(text, "/etc/letsencrypt/live/pay.example.com/fullchain.pem", str(tls.cert))
    text = _swap(text, "/etc/letsencrypt/live/pay.example.com/privkey.pem", str(tls.key))
    return _swap(text, "/var/log/nginx/scan2pay-psp.access.log", str(access_log))


class Nginx:
    """One nginx process (no daemon, no master: it is the process the test
    started, and it dies with it) in front of the PSP on ``psp_port``."""

    def __init__(self, workdir: Path, psp_port: int, tls: Tls) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.http_port, self.https_port = free_port(), free_port()
        self.access_log = workdir / "access.log"
        self.error_log = workdir / "error.log"
        (workdir / "site.conf").write_text(
            site(
                psp_port=psp_port,
                http_port=self.http_port,
                https_port=self.https_port,
                tls=tls,
                access_log=self.access_log,
            )
        )
        temp = "\n".join(
            f"    {kind}_temp_path {workdir / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        self.config = workdir / "nginx.conf"
        self.config.write_text(
            "daemon off;\n"
            "master_process off;\n"
            f"pid {workdir / 'nginx.pid'};\n"
            f"error_log {self.error_log} info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"{temp}\n"
            f"    include {workdir / 'site.conf'};\n"
            "}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        command = [nginx_binary(), "-p", str(self.workdir), "-e", str(self.error_log)]
        checked = subprocess.run(
            [*command, "-t", "-c", str(self.config)], capture_output=True, text=True, timeout=30
        )
        if checked.returncode != 0:
            raise RuntimeError(f"nginx -t refused the configuration: {checked.stderr}")
        self.process = subprocess.Popen(
            [*command, "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.https_port)
            wait_for_port(self.http_port)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"nginx did not start: {self.log()}") from None

    def log(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            end_process(self.process)
