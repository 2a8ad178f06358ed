"""Who published a release: the manifest signed with ``model-signing`` (the ``sign`` extra).

The manifest (``zoo-release.json``) holds every published file's size and sha256, so a signature over
it covers the whole release: ``zoo pull`` already proves each file against the manifest, and with
``--verify-with`` it first proves the manifest against the signature (``zoo-release.sig``, a Sigstore
bundle as model-signing writes it). Two ways to sign: an elliptic-curve private key (PEM, e.g. from a
CI secret) or Sigstore keyless signing with the ambient OIDC identity of a CI job. Verification takes
the matching public key, or ``sigstore:<identity>`` with the OIDC issuer.

ECDSA signatures are randomized, so signing the same manifest twice gives different bytes; a re-push
of an unchanged release reuses the signature it made before (kept in ``<workdir>/NAME/signature/``) or
the one already on the Hub when it still verifies, so it makes no commit.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import MissingExtraError, UsageError, VerifyError
from zoo.publish.manifest import MANIFEST

log = logging.getLogger(__name__)
SIGNATURE = "zoo-release.sig"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class Signer:
    key: Path | None = None  # an elliptic-curve private key (PEM); None with sigstore
    sigstore: bool = False  # keyless: the CI job's OIDC identity, recorded in Sigstore's transparency log

    def __post_init__(self) -> None:
        if (self.key is None) == (not self.sigstore):
            raise UsageError("sign with a key or with Sigstore, not both; fix: pass --sign-key PATH or --sigstore")
        if self.key is not None and not self.key.is_file():
            raise UsageError(f"signing key {self.key} does not exist; fix: point --sign-key at a PEM private key file")
        if self.key is not None:
            _private_key(self.key)  # a bad key fails here, before anything is built or uploaded


def _model_signing() -> Any:
    try:
        import model_signing
    except ImportError as e:
        raise MissingExtraError(
            f"signing and verifying releases need model-signing ({e.name} is not installed); fix: pip install 'zoo[sign]'"
        ) from None
    return model_signing


def _private_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise UsageError(f"{path} is not an unencrypted PEM private key ({reason}); fix: pass the key file itself") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UsageError(f"{path} is not an elliptic-curve key; fix: make one with `openssl ecparam -name prime256v1 -genkey`")
    return key


def check_verify_with(verify_with: str) -> None:
    """Before any download: a key that is not there is the user's typo, not the publisher's problem."""
    if not verify_with.startswith("sigstore:") and not Path(verify_with).expanduser().is_file():
        raise UsageError(f"public key {verify_with} does not exist; fix: --verify-with PUBLIC_KEY.pem or sigstore:IDENTITY")


def _public_key(private_key: Path, out: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    key = _private_key(private_key)
    out.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return out


def _verify_file(manifest: Path, signature: Path, config: Any) -> None:
    """``manifest`` against ``signature`` with a configured model-signing verifier; VerifyError if not."""
    try:
        config.verify(manifest, signature)
    except (ValueError, OSError) as e:  # a mismatch, another key, a damaged bundle (JSONDecodeError is a ValueError)
        reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
        raise VerifyError(f"{MANIFEST}'s signature does not verify ({reason})") from None


def _signed_by_key(manifest: bytes, signature: bytes, private_key: Path) -> bool:
    ms = _model_signing()
    with tempfile.TemporaryDirectory(prefix="zoo-sig-") as tmp:
        t = Path(tmp)
        (t / MANIFEST).write_bytes(manifest)
        (t / SIGNATURE).write_bytes(signature)
        config = ms.verifying.Config().use_elliptic_key_verifier(public_key=_public_key(private_key, t / "public.pem"))
        try:
            _verify_file(t / MANIFEST, t / SIGNATURE, config)
        except VerifyError:
            return False
    return True


def signature(folder: Path, manifest: bytes, signer: Signer, remote: Callable[[], bytes | None]) -> bytes:
    """The signature of ``manifest``: the one made before for these bytes, the Hub's when it verifies
    with this key, else a fresh one. ``folder`` keeps the last signed manifest and its signature."""
    ms = _model_signing()
    kept_manifest, kept_sig = folder / MANIFEST, folder / SIGNATURE
    if kept_manifest.is_file() and kept_sig.is_file() and kept_manifest.read_bytes() == manifest:
        if signer.sigstore or (signer.key and _signed_by_key(manifest, kept_sig.read_bytes(), signer.key)):
            return kept_sig.read_bytes()
    if signer.key is not None:
        theirs = remote()
        if theirs is not None and _signed_by_key(manifest, theirs, signer.key):
            _keep(folder, manifest, theirs)
            return theirs
    with tempfile.TemporaryDirectory(prefix="zoo-sig-") as tmp:
        t = Path(tmp)
        (t / MANIFEST).write_bytes(manifest)
        try:
            config = ms.signing.Config()
            if signer.key is not None:
                config = config.use_elliptic_key_signer(private_key=signer.key)
            else:
                config = config.use_sigstore_signer(use_ambient_credentials=True)
            config.sign(t / MANIFEST, t / SIGNATURE)
        except (ValueError, OSError) as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0][:200]
            raise UsageError(f"signing the release failed ({reason}); fix: check the signing key") from None
        sig = (t / SIGNATURE).read_bytes()
    _keep(folder, manifest, sig)
    log.info("signed %s (%s)", MANIFEST, f"key {signer.key.name}" if signer.key else "Sigstore")
    return sig


def _keep(folder: Path, manifest: bytes, sig: bytes) -> None:
    from zoo.workdir import staging

    with staging(folder) as tmp:
        (tmp / MANIFEST).write_bytes(manifest)
        (tmp / SIGNATURE).write_bytes(sig)


def verify(manifest: Path, sig: Path, verify_with: str, issuer: str = GITHUB_ISSUER) -> str:
    """Prove ``manifest`` was signed by ``verify_with`` (a public key file, or ``sigstore:<identity>``);
    returns who signed it, as a user reads it. VerifyError (exit 10) otherwise."""
    ms = _model_signing()
    config = ms.verifying.Config()
    if verify_with.startswith("sigstore:"):
        identity = verify_with.removeprefix("sigstore:")
        config = config.use_sigstore_verifier(identity=identity, oidc_issuer=issuer)
        who = f"Sigstore identity {identity} ({issuer})"
    else:
        check_verify_with(verify_with)
        key = Path(verify_with).expanduser()
        try:
            config = config.use_elliptic_key_verifier(public_key=key)
        except ValueError as e:
            raise UsageError(f"{key} is not a PEM public key ({e}); fix: pass the publisher's public key") from None
        who = f"key {key.name}"
    _verify_file(manifest, sig, config)
    return who
