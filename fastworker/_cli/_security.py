"""Secrets and TLS from the command line: files read into secrets, tokens and contexts.

Every failure is a UsageError (exit code 2) that names the flag and the file.
"""

from __future__ import annotations

import argparse
import os
import ssl

from .._usage import UsageError


def read_secret(path: str | None) -> bytes | None:
    """The cluster secret from a file (UsageError if it cannot be read or is empty)."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            data = handle.read().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the secret file {path}: {exc.strerror}") from None
    if not data:
        raise UsageError(f"the secret file {path} is empty")
    return data


def client_tls(path: str | None) -> ssl.SSLContext | None:
    """The TLS context of a client or subworker: trust the CA bundle in ``path``.

    Every certificate in the bundle is a trust anchor (as from Python 3.13 on), so a
    server's own certificate file can be given as well as its CA.
    """
    if not path:
        return None
    try:
        context = ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot load the CA bundle --tls-ca {path}: {_ssl_text(exc)}") from None
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


def server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context of a server from --tls-cert and --tls-key (None without them)."""
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if not cert:
        if key:
            raise UsageError("--tls-key needs --tls-cert (the certificate it belongs to)")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key or None)
    except (OSError, ssl.SSLError) as exc:
        files = f"--tls-cert {cert}" + (f" --tls-key {key}" if key else "")
        raise UsageError(f"cannot load the TLS certificate ({files}): {_ssl_text(exc)}") from None
    return context


def _ssl_text(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return str(exc.strerror or exc)


def read_token(path: str | None) -> str | None:
    """The dashboard bearer token from --dashboard-token-file (UsageError if unreadable)."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise UsageError(f"cannot read the dashboard token file {path}: {why}") from None
    if not token:
        raise UsageError(f"the dashboard token file {path} is empty")
    return token


def children_ca(args: argparse.Namespace) -> str:
    """The CA bundle subworker children trust: --tls-ca, else the server's own certificate."""
    ca: str = getattr(args, "tls_ca", None) or args.tls_cert
    return os.path.abspath(ca)
