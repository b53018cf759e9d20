"""Checkpoints as C2SP signed notes and witness cosignatures (bridge/log/signed_note.py).

Known answers, from their sources:

- golang.org/x/mod ``sumdb/note/note_test.go`` (``TestSign``, ``TestOpen``, ``TestNewVerifier``):
  the PeterNeumann signer key, verifier key and signed note, and EnochRoot's verifier key and
  signature line.
- transparency-dev/formats ``note/note_cosigv1_test.go`` (``TestCoSigV1NewVerifier``): a
  cosignature/v1 verifier key (remora.n621.de) and an Ed25519 one whose base64 holds a '+'.
- C2SP ``tlog-checkpoint.md`` and ``tlog-cosignature.md``: the example checkpoint body and the
  example message a cosignature/v1 signs.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator

import pytest
from nacl.signing import SigningKey

from bridge.log.signed_note import (
    MAX_SIGNATURES,
    CheckpointBody,
    VerificationError,
    add_signature,
    cosign_note,
    cosignature_message,
    key_hash,
    note_body,
    open_note,
    parse_vkey_public,
    sign_note,
    signers,
    vkey,
)

# golang.org/x/mod sumdb/note: "PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 || seed)>".
GO_SKEY = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
# transparency-dev/formats note_cosigv1_test.go.
TD_COSIGNATURE_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
TD_ED25519_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
# C2SP tlog-checkpoint.md and tlog-cosignature.md.
C2SP_ORIGIN = "example.com/behind-the-sofa"
C2SP_SIZE = 20852163
C2SP_ROOT = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
C2SP_BODY = f"{C2SP_ORIGIN}\n{C2SP_SIZE}\n{C2SP_ROOT}\n"

ORIGIN = "bridge.example/log"
LOG = SigningKey(bytes(range(32)))
W1 = SigningKey(bytes(range(1, 33)))
W2 = SigningKey(bytes(range(2, 34)))
ROOT = bytes(range(32))
T1, T2 = 1_750_000_000, 1_750_000_060


def pub(key: SigningKey) -> bytes:
    return bytes(key.verify_key)


LOG_VKEY = vkey(ORIGIN, pub(LOG))
W1_VKEY = vkey("w1.example/witness", pub(W1), cosignature=True)
W2_VKEY = vkey("w2.example/witness", pub(W2), cosignature=True)
SIGNED = sign_note(note_body(ORIGIN, 42, ROOT), ORIGIN, LOG)
COSIGNED = cosign_note(
    cosign_note(SIGNED, "w1.example/witness", W1, T1), "w2.example/witness", W2, T2
)
CHECKPOINT = CheckpointBody(ORIGIN, 42, ROOT)
ROOT_B64 = base64.b64encode(ROOT).decode()
URLSAFE_ROOT = base64.urlsafe_b64encode(ROOT[:-2] + b"\xff\xff").decode()


def _vkey_public(text: str) -> bytes:
    return base64.b64decode(text.split("+", 2)[2])[1:]


# --- Known answers ---


def test_sign_note_matches_go_sumdb_note() -> None:
    seed = base64.b64decode(GO_SKEY)
    assert seed[0] == 0x01
    key = SigningKey(seed[1:])
    assert vkey("PeterNeumann", pub(key)) == GO_PETER_VKEY
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_TEXT + "\n" + GO_PETER_SIG


@pytest.mark.parametrize(
    ("known", "cosignature"),
    [
        (GO_PETER_VKEY, False),
        (GO_ENOCH_VKEY, False),
        (TD_ED25519_VKEY, False),  # its base64 holds a '+': split on the first two only
        (TD_COSIGNATURE_VKEY, True),  # key hash of type 0x04
    ],
)
def test_vkey_matches_published_verifier_keys(known: str, cosignature: bool) -> None:
    name = known.split("+", 1)[0]
    assert vkey(name, _vkey_public(known), cosignature=cosignature) == known


def test_go_signatures_verify_and_unknown_lines_are_ignored() -> None:
    """Go's note is not a checkpoint, so opening it fails, but only at the body: the signature
    by the given key verified first, and the other key's line was ignored."""
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    for log_vkey in (GO_PETER_VKEY, GO_ENOCH_VKEY):
        with pytest.raises(VerificationError, match="must have origin, size and root lines"):
            open_note(note, log_vkey)
    tampered = GO_TEXT + "\n" + GO_PETER_SIG[:60] + "ABCD" + GO_PETER_SIG[60:]  # as Go's test
    with pytest.raises(VerificationError, match="log signature by PeterNeumann does not verify"):
        open_note(tampered, GO_PETER_VKEY)
    with pytest.raises(VerificationError, match="no signature by the log key EnochRoot"):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG, GO_ENOCH_VKEY)


def test_note_body_and_cosigned_message_match_the_c2sp_examples() -> None:
    assert note_body(C2SP_ORIGIN, C2SP_SIZE, base64.b64decode(C2SP_ROOT)) == C2SP_BODY
    assert cosignature_message(C2SP_BODY, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n"
        b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )


def test_key_hash_is_the_log_key_id_of_the_export() -> None:
    """bridge.log.logkey names the log key by this hash, so an export's key_id is the hash
    in the log's vkey."""
    assert LOG_VKEY.split("+")[1] == key_hash(ORIGIN, pub(LOG)).hex()
    assert key_hash(ORIGIN, pub(LOG)) != key_hash(ORIGIN, pub(LOG), cosignature=True)


# --- Round trips ---


def test_signed_note_opens_to_its_checkpoint() -> None:
    body = f"{ORIGIN}\n42\n{ROOT_B64}\n"
    signature = key_hash(ORIGIN, pub(LOG)) + LOG.sign(body.encode()).signature
    expected = f"{body}\n— {ORIGIN} {base64.b64encode(signature).decode()}\n"
    assert expected == SIGNED
    assert open_note(SIGNED, LOG_VKEY) == CHECKPOINT


def test_note_cosigned_by_two_witnesses_opens_with_their_vkeys() -> None:
    assert COSIGNED.startswith(SIGNED) and COSIGNED.count("\n— ") == 3
    assert open_note(COSIGNED, LOG_VKEY, [W1_VKEY, W2_VKEY]) == CHECKPOINT
    assert open_note(COSIGNED, LOG_VKEY, [W2_VKEY]) == CHECKPOINT
    assert open_note(COSIGNED, LOG_VKEY) == CHECKPOINT  # witnesses unasked for are ignored
    for size in (0, 2**63 - 1):
        note = sign_note(note_body(ORIGIN, size, ROOT), ORIGIN, LOG)
        assert open_note(note, LOG_VKEY).size == size


def test_cosignature_line_holds_key_hash_timestamp_and_signature() -> None:
    line = COSIGNED.splitlines()[-1]
    assert line.startswith("— w2.example/witness ")
    data = base64.b64decode(line.split(" ")[2])
    assert data[:4] == key_hash("w2.example/witness", pub(W2), cosignature=True)
    assert int.from_bytes(data[4:12], "big") == T2
    body = note_body(ORIGIN, 42, ROOT)
    W2.verify_key.verify(cosignature_message(body, T2), data[12:])


# --- Mutations ---


def _changed(note: str, old: str, new: str) -> str:
    assert old in note
    return note.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n42\n", "\n43\n"),  # size
        (f"{ORIGIN}\n", "bridge.example/other\n"),  # origin (the first occurrence: the body)
        (ROOT_B64[:4], "AAAA"),  # root
    ],
)
def test_changed_body_fails_the_log_signature(old: str, new: str) -> None:
    with pytest.raises(VerificationError, match=r"log signature .* does not verify"):
        open_note(_changed(COSIGNED, old, new), LOG_VKEY, [W1_VKEY, W2_VKEY])


def test_every_character_change_of_a_cosigned_note_fails() -> None:
    def changes() -> Iterator[str]:
        for i, char in enumerate(COSIGNED):
            for other in {chr(ord(char) ^ 1), "x" if char != "x" else "y"}:
                yield COSIGNED[:i] + other + COSIGNED[i + 1 :]

    count = 0
    for note in changes():
        with pytest.raises(VerificationError):
            open_note(note, LOG_VKEY, [W1_VKEY, W2_VKEY])
        count += 1
    assert count > 2 * 300


def test_wrong_log_key_finds_no_signature() -> None:
    other = vkey(ORIGIN, pub(W1))
    with pytest.raises(VerificationError, match="no signature by the log key"):
        open_note(SIGNED, other)


def test_bad_base64_in_a_signature_line_fails() -> None:
    encoded = SIGNED.splitlines()[-1].split(" ")[2]
    for bad in ("!" + encoded[1:], encoded[:-1], encoded.rstrip("=") + "==="):
        with pytest.raises(VerificationError, match="signature line 1 is not"):
            open_note(_changed(SIGNED, encoded, bad), LOG_VKEY)


def test_missing_or_wrong_cosignature_fails_when_required() -> None:
    only_w1 = cosign_note(SIGNED, "w1.example/witness", W1, T1)
    with pytest.raises(
        VerificationError, match=re.escape("w2.example/witness's cosignature is missing")
    ):
        open_note(only_w1, LOG_VKEY, [W1_VKEY, W2_VKEY])
    assert open_note(only_w1, LOG_VKEY, [W1_VKEY, W2_VKEY], min_witnesses=1) == CHECKPOINT
    with pytest.raises(VerificationError, match="1 valid witness cosignatures where 2"):
        open_note(only_w1, LOG_VKEY, [W1_VKEY, W2_VKEY], min_witnesses=2)
    # A cosignature whose timestamp was changed no longer verifies; with a quorum of one the
    # other witness suffices.
    encoded = COSIGNED.splitlines()[-1].split(" ")[2]
    data = bytearray(base64.b64decode(encoded))
    data[11] ^= 1  # the timestamp's last byte
    wrong = _changed(COSIGNED, encoded, base64.b64encode(data).decode())
    with pytest.raises(
        VerificationError, match=re.escape("w2.example/witness's cosignature does not verify")
    ):
        open_note(wrong, LOG_VKEY, [W1_VKEY, W2_VKEY])
    assert open_note(wrong, LOG_VKEY, [W1_VKEY, W2_VKEY], min_witnesses=1) == CHECKPOINT
    # A witness's plain Ed25519 signature is not a cosignature.
    plain = (
        SIGNED
        + sign_note(note_body(ORIGIN, 42, ROOT), "w1.example/witness", W1).splitlines(
            keepends=True
        )[-1]
    )
    with pytest.raises(
        VerificationError, match=re.escape("w1.example/witness's cosignature is missing")
    ):
        open_note(plain, LOG_VKEY, [W1_VKEY])


def _cosignature_line(name: str, key: SigningKey, timestamp: int, *, flip: bool = False) -> str:
    """A cosignature line built by hand: with a timestamp cosign_note refuses to write, or with
    one bit of the signature flipped."""
    body = note_body(ORIGIN, 42, ROOT)
    signature = key.sign(cosignature_message(body, timestamp)).signature
    if flip:
        signature = signature[:-1] + bytes([signature[-1] ^ 1])
    data = key_hash(name, pub(key), cosignature=True) + timestamp.to_bytes(8, "big") + signature
    return f"— {name} {base64.b64encode(data).decode()}\n"


def test_cosignature_with_a_timestamp_beyond_int64_fails() -> None:
    """tlog-cosignature: the timestamp "MUST NOT exceed 2^63 - 1", even when signed."""
    assert (
        open_note(
            SIGNED + _cosignature_line("w1.example/witness", W1, 2**63 - 1), LOG_VKEY, [W1_VKEY]
        )
        == CHECKPOINT
    )
    note = SIGNED + _cosignature_line("w1.example/witness", W1, 2**63)
    with pytest.raises(VerificationError, match=re.escape("cosignature does not verify")):
        open_note(note, LOG_VKEY, [W1_VKEY])


def test_a_wrong_cosignature_beside_a_valid_one_of_the_same_witness_fails() -> None:
    """signed-note: "If a signature from a known key fails to verify, clients SHOULD reject
    the whole note"; here the witness does not count, so a note requiring it fails."""
    valid = _cosignature_line("w1.example/witness", W1, T1)
    forged = _cosignature_line("w1.example/witness", W1, T1, flip=True)
    assert forged != valid
    with pytest.raises(VerificationError, match=re.escape("cosignature does not verify")):
        open_note(SIGNED + valid + forged, LOG_VKEY, [W1_VKEY])


def test_cosignature_by_another_key_under_the_witness_name_is_ignored() -> None:
    impostor = cosign_note(SIGNED, "w1.example/witness", W2, T1)  # other key, other key hash
    with pytest.raises(
        VerificationError, match=re.escape("w1.example/witness's cosignature is missing")
    ):
        open_note(impostor, LOG_VKEY, [W1_VKEY])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (f"{ORIGIN}\n042\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n{2**63}\n{ROOT_B64}\n", "size"),
        (f"{ORIGIN}\n42\n{URLSAFE_ROOT}\n", "root"),
        (f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n", "root is 31 bytes"),
        (f"{ORIGIN}\n42\n{ROOT_B64.rstrip('=')}\n", "root"),
        (f"\n42\n{ROOT_B64}\n", "origin is empty"),
        (f"{ORIGIN}\n42\n{ROOT_B64}\nextension\n", "extension lines"),
        (f"{ORIGIN}\n42\n", "origin, size and root lines"),
    ],
)
def test_malformed_checkpoint_body_is_named_after_the_signature_verifies(
    body: str, field: str
) -> None:
    note = sign_note(body, ORIGIN, LOG)
    with pytest.raises(VerificationError, match=field):
        open_note(note, LOG_VKEY)


@pytest.mark.parametrize(
    ("note", "problem"),
    [
        (SIGNED.replace("\n\n", "\n"), "no blank line"),
        (SIGNED[:-1], "do not end with a newline"),
        (SIGNED.replace("— ", "- "), "em dash"),
        (SIGNED.replace("— ", "—"), "em dash"),
        (SIGNED.replace(f"— {ORIGIN} ", "— bad+name "), "no valid key name"),
        (SIGNED.replace(f"— {ORIGIN} ", "— bad name "), "not standard base64"),
        (SIGNED.replace("\n42\n", "\n42\r\n"), "control character"),
        (SIGNED + SIGNED.splitlines(keepends=True)[-1] * MAX_SIGNATURES, "more than 100"),
        (SIGNED.replace(SIGNED.split(" ")[-1], "AAAA\n"), "too short"),
        (SIGNED[:5] + "\ud800" + SIGNED[5:], "UTF-8"),
    ],
)
def test_malformed_note_fails(note: str, problem: str) -> None:
    with pytest.raises(VerificationError, match=problem):
        open_note(note, LOG_VKEY)


@pytest.mark.parametrize(
    ("log_vkey", "witness_vkeys", "problem"),
    [
        (W1_VKEY, [], "log_vkey is not an Ed25519"),
        (LOG_VKEY, [vkey("w1.example/witness", pub(W1))], r"witness_vkeys\[0\] is not a cosig"),
        (LOG_VKEY.replace("+", "+0", 1)[:-1], [], "log_vkey is not a verifier key"),
        (LOG_VKEY[: LOG_VKEY.index("+") + 1] + "00000000" + LOG_VKEY[-45:], [], "key hash"),
        (LOG_VKEY[:-2] + "!=", [], "log_vkey key is not standard base64"),
        (LOG_VKEY.split("+", 1)[1], [], "log_vkey is not a verifier key"),
        ("bad name" + LOG_VKEY[len(ORIGIN) :], [], "log_vkey is not a verifier key"),
        (LOG_VKEY, [W1_VKEY, W1_VKEY], "twice"),
    ],
)
def test_malformed_verifier_key_fails(
    log_vkey: str, witness_vkeys: list[str], problem: str
) -> None:
    with pytest.raises(VerificationError, match=problem):
        open_note(COSIGNED, log_vkey, witness_vkeys)


def test_min_witnesses_out_of_range_is_a_caller_error() -> None:
    for bad in (-1, 3):
        with pytest.raises(ValueError, match="min_witnesses"):
            open_note(COSIGNED, LOG_VKEY, [W1_VKEY, W2_VKEY], min_witnesses=bad)


# --- Building notes ---


def test_bad_arguments_to_build_a_note_raise_value_error() -> None:
    body = note_body(ORIGIN, 42, ROOT)
    with pytest.raises(ValueError, match="origin"):
        note_body("two\nlines", 42, ROOT)
    with pytest.raises(ValueError, match="origin"):
        note_body("", 42, ROOT)
    with pytest.raises(ValueError, match="size"):
        note_body(ORIGIN, -1, ROOT)
    with pytest.raises(ValueError, match="size"):
        note_body(ORIGIN, True, ROOT)
    with pytest.raises(ValueError, match="root"):
        note_body(ORIGIN, 42, ROOT[:31])
    with pytest.raises(ValueError, match="key name"):
        sign_note(body, "a+b", LOG)
    with pytest.raises(ValueError, match="key name"):
        sign_note(body, "a b", LOG)
    with pytest.raises(ValueError, match="end with a newline"):
        sign_note(body[:-1], ORIGIN, LOG)
    with pytest.raises(ValueError, match="32 bytes"):
        vkey(ORIGIN, pub(LOG)[:31])
    with pytest.raises(ValueError, match="timestamp"):
        cosign_note(SIGNED, "w1.example/witness", W1, 2**63)
    with pytest.raises(VerificationError, match="origin, size and root"):
        cosign_note(GO_TEXT + "\n" + GO_PETER_SIG, "w1.example/witness", W1, T1)


# --- notes with several signers, as the werkafspraken are signed (bridge/policy/signed.py) ------


def test_add_signature_writes_the_line_gos_note_sign_writes() -> None:
    peter = SigningKey(base64.b64decode(GO_SKEY)[1:])
    assert add_signature(GO_TEXT, "PeterNeumann", peter) == GO_TEXT + "\n" + GO_PETER_SIG
    # Signing again replaces the signer's own line and keeps the others'.
    both = GO_TEXT + "\n" + GO_ENOCH_SIG + GO_PETER_SIG
    assert add_signature(both, "PeterNeumann", peter) == both


def test_signers_names_the_valid_signers_of_gos_note() -> None:
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    assert signers(note, [GO_ENOCH_VKEY, GO_PETER_VKEY]) == (
        GO_TEXT,
        [GO_ENOCH_VKEY, GO_PETER_VKEY],
    )
    assert signers(note, [GO_PETER_VKEY]) == (GO_TEXT, [GO_PETER_VKEY])  # others ignored
    assert signers(GO_TEXT + "\n" + GO_PETER_SIG, [GO_ENOCH_VKEY]) == (GO_TEXT, [])
    with pytest.raises(VerificationError, match="by PeterNeumann does not verify"):
        signers(note.replace("cryptography", "Cryptography"), [GO_PETER_VKEY])
    assert parse_vkey_public(GO_PETER_VKEY)[0] == "PeterNeumann"
