"""TLS and basic auth for the HTTP endpoint, from an exporter-toolkit web-config file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import ssl
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import bcrypt
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from monitor.config.files import FileProblem, read_bounded
from monitor.config.loading import ConfigError, describe, read_config_file
from monitor.config.values import FieldProblem, header_value

# $2a$, $2b$ (Python's bcrypt) and $2y$ (htpasswd -B), cost 04-31, 22 characters of salt and
# 31 of hash: the format Go's bcrypt, which exporter-toolkit uses, accepts too.
_BCRYPT = re.compile(r"^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$")
_BCRYPT_MAX_PASSWORD = 72
MAX_PEM_BYTES = 1 << 20  # a certificate chain or key file; a few KiB in practice
# Refused credentials remembered (32-byte HMACs, about 1.5 MB when full), so a client repeating
# a wrong password costs one bcrypt, not one a request.
REFUSED_MEMORY = 10_000

# Keys of the exporter-toolkit format this server does not implement; named, not just "unknown".
_TOOLKIT_ONLY_TLS = (
    "cert",
    "key",
    "client_ca",
    "client_allowed_sans",
    "cipher_suites",
    "prefer_server_cipher_suites",
    "curve_preferences",
)
_TOOLKIT_ONLY = ("rate_limit",)
# Go's policies that accept a client certificate without verifying it: an open door.
_UNVERIFIED_CLIENT_AUTH = ("RequestClientCert", "RequireAnyClientCert")
_TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_VERIFY_MODES = {
    "NoClientCert": ssl.CERT_NONE,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


def _readable(path: Path, info: ValidationInfo) -> Path:
    """The path, relative to the web-config file (as in exporter-toolkit), if readable."""
    folder = (info.context or {}).get("folder")
    resolved = folder / path if isinstance(folder, Path) else path
    try:
        read_bounded(resolved, MAX_PEM_BYTES, "PEM file")  # never a FIFO that blocks ssl's read
    except FileProblem as problem:
        raise ValueError(str(problem)) from None
    return resolved


def _bcrypt_hash(value: str) -> str:
    if not _BCRYPT.match(value):
        raise ValueError(
            "not a bcrypt hash (expected $2y$ or $2b$...; see docs/configuration.md on making one)"
        )
    return value


ReadableFile = Annotated[Path, AfterValidator(_readable)]
BcryptHash = Annotated[str, AfterValidator(_bcrypt_hash)]
HeaderValue = Annotated[str, AfterValidator(header_value)]


def _user_name(value: str) -> str:
    """A basic-auth user name: no colon (it ends the name in the header) and no control bytes."""
    if not value or ":" in value or any(ord(c) < 32 for c in value):
        raise ValueError("a user name must be non-empty, without ':' or control characters")
    return value


UserName = Annotated[str, AfterValidator(_user_name)]


class _Section(BaseModel):
    # Built when a web config file is first read, not at import: most monitors have none.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


def _reject(data: Any, keys: tuple[str, ...], why: str) -> None:
    for key in keys:
        if isinstance(data, dict) and key in data:
            raise FieldProblem(key, f"{why}")


class TLSServerConfig(_Section):
    """The server certificate, the client-certificate policy and the TLS versions."""

    cert_file: ReadableFile
    key_file: ReadableFile
    client_auth_type: Literal[
        "NoClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"
    ] = "NoClientCert"
    client_ca_file: ReadableFile | None = None
    min_version: Literal["TLS12", "TLS13"] = "TLS12"
    max_version: Literal["TLS12", "TLS13"] = "TLS13"

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        _reject(data, _TOOLKIT_ONLY_TLS, "not supported by rollout-monitor (use the *_file keys)")
        policy = data.get("client_auth_type") if isinstance(data, dict) else None
        if policy in _UNVERIFIED_CLIENT_AUTH:
            raise FieldProblem(
                "client_auth_type",
                f"{policy} accepts unverified client certificates; use RequireAndVerifyClientCert",
            )
        return data

    @model_validator(mode="after")
    def _consistent(self) -> TLSServerConfig:
        if self.client_auth_type != "NoClientCert" and self.client_ca_file is None:
            raise FieldProblem(
                "client_ca_file", f"required with client_auth_type {self.client_auth_type}"
            )
        if self.client_auth_type == "NoClientCert" and self.client_ca_file is not None:
            raise FieldProblem(
                "client_auth_type",
                "client_ca_file is set but NoClientCert ignores it; use RequireAndVerifyClientCert",
            )
        if _TLS_VERSIONS[self.min_version] > _TLS_VERSIONS[self.max_version]:
            raise FieldProblem("min_version", "must not be above max_version")
        self.context()
        return self

    def context(self) -> ssl.SSLContext:
        """A server context; ValueError naming the key whose file OpenSSL cannot use."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = _TLS_VERSIONS[self.min_version]
        context.maximum_version = _TLS_VERSIONS[self.max_version]
        _load_certificates(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), "cert_file", self.cert_file)
        _load_key(context, self.cert_file, self.key_file)
        context.verify_mode = _VERIFY_MODES[self.client_auth_type]
        if self.client_ca_file is not None:
            _load_certificates(context, "client_ca_file", self.client_ca_file)
        return context


def _load_certificates(context: ssl.SSLContext, key: str, path: Path) -> None:
    """Trust the certificates in path; ValueError naming key when it holds none."""
    try:
        context.load_verify_locations(cafile=path)
    except ssl.SSLError as error:
        raise FieldProblem(key, f"no certificate in {path}: {_reason(error)}") from None


def _load_key(context: ssl.SSLContext, cert_file: Path, key_file: Path) -> None:
    """Serve with this certificate and key; ValueError naming key_file when they do not fit."""
    asked: list[bool] = []

    def no_passphrase() -> bytes:  # else OpenSSL would prompt for one on the terminal
        asked.append(True)
        return b""

    try:
        context.load_cert_chain(cert_file, key_file, no_passphrase)
    except ssl.SSLError as error:
        if asked:
            raise FieldProblem(
                "key_file", f"{key_file} is encrypted; give the key without a passphrase"
            ) from None
        raise FieldProblem(
            "key_file",
            f"cannot use {key_file} with cert_file {cert_file}:"
            f" {_reason(error, 'no PEM private key')}",
        ) from None


def _reason(error: ssl.SSLError, unknown: str = "not PEM") -> str:
    """OpenSSL's reason in lower case words ('key values mismatch'), or unknown when it has none."""
    return str(error.reason).lower().replace("_", " ") if error.reason else unknown


class Headers(_Section):
    """The response headers exporter-toolkit lets a web config set."""

    content_security_policy: HeaderValue | None = Field(None, alias="Content-Security-Policy")
    x_frame_options: Literal["deny", "sameorigin"] | None = Field(None, alias="X-Frame-Options")
    x_content_type_options: Literal["nosniff"] | None = Field(None, alias="X-Content-Type-Options")
    x_xss_protection: HeaderValue | None = Field(None, alias="X-XSS-Protection")
    strict_transport_security: HeaderValue | None = Field(None, alias="Strict-Transport-Security")

    def items(self) -> list[tuple[str, str]]:
        """(name, value) of each header set."""
        values = self.model_dump(by_alias=True, exclude_none=True)
        return [(name, str(value)) for name, value in values.items() if value != ""]


class HTTPServerConfig(_Section):
    """Response headers; http2 is accepted for compatibility and has no effect (HTTP/1.1 only)."""

    http2: bool = True
    headers: Headers = Headers()


class WebConfig(_Section):
    """The whole web-config file: TLS, basic auth users, response headers."""

    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig = HTTPServerConfig()
    basic_auth_users: dict[UserName, BcryptHash] = {}

    @model_validator(mode="before")
    @classmethod
    def _supported(cls, data: Any) -> Any:
        _reject(data, _TOOLKIT_ONLY, "not supported by rollout-monitor")
        return data


def load_web_config(path: Path | None) -> WebConfig | None:
    """The validated web config in the file, None without one, or ConfigError naming each key."""
    if path is None:
        return None
    data = read_config_file(str(path))
    try:
        return WebConfig.model_validate(data, context={"folder": path.parent})
    except ValidationError as error:
        details = error.errors(include_url=False)
        raise ConfigError([describe(detail, {}, str(path)) for detail in details]) from None


class BasicAuth:
    """Checks Authorization headers against bcrypt hashes; a verified password is remembered,
    and so are the last REFUSED_MEMORY refused ones.

    `remembered` answers at once for a password verified or refused before; `verify` costs one
    bcrypt (monitor.http.passwords schedules it off the serving path). `keeping` hands the
    previous instance on when the users are the same, so a reload keeps what was verified."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)
        self._hashes = {name: hashed.encode() for name, hashed in users.items()}
        # An unknown user still costs one bcrypt, so timing does not tell which users exist.
        cost = int(next(iter(users.values()))[4:6]) if users else 4
        self._decoy = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
        # Remembered as an HMAC under a key of this process only: never the password itself.
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        # Refused credentials, so a repeated wrong password costs no bcrypt: HMACs, oldest first.
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self._refusing = threading.Lock()  # verify runs in several threads

    @classmethod
    def keeping(cls, users: Mapping[str, str], previous: BasicAuth | None) -> BasicAuth:
        """The previous instance when it checks exactly these users, else a new one."""
        if previous is not None and previous.users == dict(users):
            return previous
        return cls(users)

    def remembered(self, authorization: str | None) -> bool | None:
        """True for a password verified before, False for a header that can never pass (no or
        malformed credentials, a password refused before, or another password of a user whose
        password was verified), None when only a bcrypt can tell."""
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        known = self._verified.get(user)
        if known is not None:
            # A user has one password that passes: bcrypt is deterministic, and a password over
            # 72 bytes (where bcrypt stops reading) is refused. Any other is wrong, unasked.
            return hmac.compare_digest(known, self._digest(password))
        with self._refusing:
            return False if self._digest(_pair(user, password)) in self._refused else None

    @staticmethod
    def user_of(authorization: str | None) -> str:
        """The user name the header gives; empty when it gives none."""
        credentials = _basic_credentials(authorization)
        return "" if credentials is None else credentials[0]

    def fingerprint(self, authorization: str | None) -> bytes:
        """An HMAC of the header, the same for the same credentials: never the password itself."""
        return self._digest((authorization or "").encode())

    def verify(self, authorization: str | None) -> bool:
        """Whether the header carries a user's right password (one bcrypt; remembered if so)."""
        credentials = _basic_credentials(authorization)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self._hashes.get(user)
        ok = _checkpw(password, hashed or self._decoy) and hashed is not None
        if ok:
            self._verified[user] = self._digest(password)
        else:
            self._refuse(self._digest(_pair(user, password)))
        return ok

    def _refuse(self, digest: bytes) -> None:
        with self._refusing:
            self._refused[digest] = None
            self._refused.move_to_end(digest)
            while len(self._refused) > REFUSED_MEMORY:
                self._refused.popitem(last=False)

    def _digest(self, password: bytes) -> bytes:
        return hmac.new(self._key, password, hashlib.sha256).digest()


def _pair(user: str, password: bytes) -> bytes:
    """user:password, unambiguous (a user name has no colon)."""
    return user.encode() + b":" + password


def _checkpw(password: bytes, hashed: bytes) -> bool:
    if len(password) > _BCRYPT_MAX_PASSWORD:  # bcrypt would ignore the rest; refuse instead
        return False
    return bcrypt.checkpw(password, hashed)


def _basic_credentials(authorization: str | None) -> tuple[str, bytes] | None:
    """(user, password) from 'Basic base64(user:password)', or None."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
        user, sep, password = decoded.partition(b":")
        return (user.decode(), password) if sep else None
    except (ValueError, UnicodeDecodeError):  # not base64, not ASCII, not UTF-8
        return None
