"""The PSP's public signing keys: ``/v1/keys`` and the same keys as a JSON
Web Key Set at ``/.well-known/jwks.json``."""

from __future__ import annotations

from aiohttp import web

from psp_server.api.appkeys import STORAGE
from psp_server.api.http import json_response
from psp_server.core.records import (
    KeyInfo,
)
from scan2pay_common.signing import ALG, PublicKey, b64url
from scan2pay_common.timefmt import to_rfc3339


async def list_keys(request: web.Request) -> web.Response:
    """The PSP's public keys: the active one signs, the others verify what
    they signed before a rotation. No authentication: they are public."""
    keys = await request.app[STORAGE].signing_keys()
    return json_response(
        {
            "keys": [
                {
                    "kid": key.kid,
                    "alg": ALG,
                    "public_key": key.public_key,
                    "active": key.active,
                    "created_at": to_rfc3339(key.created_at),
                }
                for key in keys
            ]
        }
    )


async def jwks(request: web.Request) -> web.Response:
    """The same keys as a JSON Web Key Set (RFC 7517, with RFC 8037's
    Ed25519 keys), so that standard JOSE libraries can load them. Each key
    is its raw 32 bytes, as ``/v1/keys`` lists them, and keeps its kid."""
    keys = await request.app[STORAGE].signing_keys()
    return json_response({"keys": [_jwk(key) for key in keys]})


def _jwk(key: KeyInfo) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(PublicKey.parse(key.public_key).raw),
        "kid": key.kid,
        "use": "sig",
        "alg": "EdDSA",
    }
