"""TLS between a run's driver, tasks and shards, with nothing to set up: the driver makes a key
and a self-signed certificate for the run and carries them inside the run's secret, which
already travels to every shard and task by a private path (the environment of a shard it
starts, Spark's task closure, an operator's --secret-file). A shard serves with them; a
client trusts that one certificate and nothing else, so a peer that does not hold the run's
secret can neither read nor alter the traffic, nor pose as a shard.

A secret is either a bare token (no TLS: loopback, or an operator's choice) or
"TOKEN.MATERIAL", MATERIAL the base64url JSON of the certificate and key in PEM. The token
alone is what calls and hellos prove knowledge of; the material never crosses the wire.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from ..errors import Distw2vError

SERVER_NAME = "distw2v-shard"  # the name every run's certificate holds, and clients expect


@dataclass(frozen=True)
class Tls:
    cert: bytes  # PEM
    key: bytes  # PEM

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        _load_chain(context, self)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies the name and chain
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.load_verify_locations(cadata=self.cert.decode())
        return context


def _load_chain(context: ssl.SSLContext, tls: Tls) -> None:
    """ssl loads a chain only from files: a private temporary directory, gone at once."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.pem")
        with open(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(tls.key + tls.cert)
        context.load_cert_chain(path)


def split(secret: str | None) -> tuple[str | None, Tls | None]:
    """The token calls prove, and the run's TLS material if the secret carries any."""
    if not secret or "." not in secret:
        return secret or None, None
    token, material = secret.split(".", 1)
    try:
        pems = json.loads(base64.urlsafe_b64decode(material.encode()))
        tls = Tls(cert=pems["cert"].encode(), key=pems["key"].encode())
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Distw2vError("the run's secret carries TLS material that cannot be read; "
                           "make a new one with `distw2v ps-secret --tls`.") from None
    return token, tls


def with_tls(token: str) -> str:
    """`token` with a fresh key and self-signed certificate for the run's shards."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
            .sign(key, hashes.SHA256()))
    pems = {"cert": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "key": key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()}
    material = base64.urlsafe_b64encode(json.dumps(pems).encode()).decode()
    return f"{token}.{material}"
