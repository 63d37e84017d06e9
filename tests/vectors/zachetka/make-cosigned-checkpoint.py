# Builds a checkpoint signed by a ledger key and cosigned by a witness, from C2SP signed-note,
# tlog-checkpoint and tlog-cosignature alone (Python `cryptography`, no zachetka code).
import base64, hashlib, struct
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
def key(seed): 
    k = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())
    return k, k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
b64 = lambda b: base64.b64encode(b).decode()
origin, wname = "example.org/python-log", "witness.example.org/py1"
lk, lpk = key(b"python ledger test key")
wk, wpk = key(b"python witness test key")
lid = hashlib.sha256(origin.encode() + b"\n\x01" + lpk).digest()[:4]
wid = hashlib.sha256(wname.encode() + b"\n\x04" + wpk).digest()[:4]
root = hashlib.sha256(b"python root").digest()
body = f"{origin}\n4242\n{b64(root)}\n".encode()
ts = 1764662400
lsig = lk.sign(body)
wsig = wk.sign(b"cosignature/v1\ntime %d\n" % ts + body)
note = body + b"\n" + f"\u2014 {origin} {b64(lid + lsig)}\n".encode() + f"\u2014 {wname} {b64(wid + struct.pack('>Q', ts) + wsig)}\n".encode()
open(__import__("os").path.dirname(__file__) + "/cosigned-checkpoint.note", "wb").write(note)
open(__import__("os").path.dirname(__file__) + "/cosigned-checkpoint.keys", "w").write(
    origin + "+" + lid.hex() + "+" + b64(bytes([1]) + lpk) + "\n" + wname + "+" + wid.hex() + "+" + b64(bytes([4]) + wpk) + "\n" + str(ts) + "\n")
