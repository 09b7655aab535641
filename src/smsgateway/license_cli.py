"""`smsgateway license keygen|issue`: the vendor's tools for signed licenses.

keygen writes a new Ed25519 pair: `license_private.pem` (mode 0600; keep it off the
gateway and out of the repository) and `license_public.pem`, and prints the public
key in the base64 form `[license] public_key` takes. issue signs a license file with
the private key.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

from .core.license import generate_keypair, issue, load_private_key

PRIVATE_NAME = "license_private.pem"
PUBLIC_NAME = "license_public.pem"


def cmd_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    private_path = out / PRIVATE_NAME
    if private_path.exists() and not args.force:
        print(f"smsgateway: {private_path} exists (use --force to replace it)", file=sys.stderr)
        return 1
    private_pem, public_pem, public_b64 = generate_keypair()
    # Created 0600 from the start: never world-readable, not even for a moment.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_pem)
    (out / PUBLIC_NAME).write_bytes(public_pem)
    print(f"private key: {private_path} (keep it secret, off the gateway)")
    print(f"public key:  {out / PUBLIC_NAME}")
    print("settings:    [license]")
    print(f'             public_key = "{public_b64}"')
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    try:
        key = load_private_key(Path(args.key).read_bytes())
        valid_until = dt.date.fromisoformat(args.valid_until)
        data = issue(
            key,
            company=args.company,
            valid_until=valid_until,
            max_connections=args.max_connections,
            max_tps=args.max_tps,
        )
    except (OSError, ValueError, TypeError) as exc:
        print(f"smsgateway: {exc}", file=sys.stderr)
        return 1
    Path(args.out).write_bytes(data)
    print(
        f"license for {args.company}: valid until {valid_until.isoformat()},"
        f" {args.max_connections} connections, {args.max_tps} TPS -> {args.out}"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lic = sub.add_parser("license", help="make vendor keys and sign licenses")
    lic_sub = lic.add_subparsers(dest="license_command", required=True)
    keygen = lic_sub.add_parser("keygen", help="create a vendor Ed25519 key pair")
    keygen.add_argument("--out", required=True, help="directory for the two PEM files")
    keygen.add_argument("--force", action="store_true", help="replace an existing pair")
    keygen.set_defaults(handler=cmd_keygen)
    iss = lic_sub.add_parser("issue", help="sign a license file")
    iss.add_argument("--key", required=True, help="the vendor's private key (PEM)")
    iss.add_argument("--company", required=True)
    iss.add_argument("--valid-until", required=True, help="YYYY-MM-DD, valid through that day")
    iss.add_argument("--max-connections", type=int, required=True)
    iss.add_argument("--max-tps", type=int, required=True)
    iss.add_argument("--out", required=True, help="where to write the license file")
    iss.set_defaults(handler=cmd_issue)
