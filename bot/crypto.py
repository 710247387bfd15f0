"""WeCom callback crypto on top of wechatpy: signature checked in constant time, receive id checked.

wechatpy's own ``check_signature`` compares with ``!=``; we compute the SHA1 ourselves, compare with
``hmac.compare_digest`` and use wechatpy's AES (PKCS#7 over 32-byte blocks) for the payload.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time

from wechatpy.enterprise.crypto import PrpCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException


class CallbackRejected(Exception):
    """A callback that must be answered 4xx and leave nothing behind."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    return hashlib.sha1("".join(sorted([token, timestamp, nonce, encrypt])).encode()).hexdigest()  # noqa: S324


class WeComCrypto:
    def __init__(self, token: str, encoding_aes_key: str, corp_id: str, max_clock_skew_s: int = 600) -> None:
        key = base64.b64decode(encoding_aes_key + "=")
        if len(key) != 32:
            raise ValueError("EncodingAESKey must decode to 32 bytes")
        self.key = key
        self.token = token
        self.corp_id = corp_id
        self.max_clock_skew_s = max_clock_skew_s

    def _check(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str, now: float | None) -> None:
        if not (msg_signature and timestamp and nonce and encrypt):
            raise CallbackRejected("missing msg_signature, timestamp, nonce or payload")
        expected = signature(self.token, timestamp, nonce, encrypt)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode()):
            raise CallbackRejected("bad signature", 403)
        if self.max_clock_skew_s:
            try:
                ts = int(timestamp)
            except ValueError:
                raise CallbackRejected("timestamp is not a number") from None
            now = time.time() if now is None else now
            if abs(now - ts) > self.max_clock_skew_s:
                raise CallbackRejected("stale timestamp", 403)

    def decrypt(self, msg_signature: str, timestamp: str, nonce: str, encrypt: str,
                now: float | None = None) -> str:
        """Verify and decrypt one payload (an echostr or the Encrypt element) to text."""
        self._check(msg_signature, timestamp, nonce, encrypt, now)
        try:
            return PrpCrypto(self.key).decrypt(encrypt, self.corp_id)
        except InvalidCorpIdException:
            raise CallbackRejected("receive id does not match corp_id", 403) from None
        except Exception:  # malformed base64, bad padding, truncated plaintext
            raise CallbackRejected("payload does not decrypt") from None

    def encrypt_reply(self, xml: str, nonce: str | None = None, timestamp: str | None = None) -> str:
        """The passive-reply envelope <xml><Encrypt/><MsgSignature/><TimeStamp/><Nonce/></xml>."""
        nonce = nonce or str(secrets.randbelow(10**10))
        timestamp = timestamp or str(int(time.time()))
        encrypt = PrpCrypto(self.key).encrypt(xml, self.corp_id).decode()
        sig = signature(self.token, timestamp, nonce, encrypt)
        return (f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{sig}]]></MsgSignature>"
                f"<TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")

    def encrypt_callback(self, xml: str, timestamp: str | None = None,
                         nonce: str | None = None) -> tuple[dict[str, str], str]:
        """What WeCom sends: (query params, body). Used by the emulator and the tests."""
        nonce = nonce or str(secrets.randbelow(10**10))
        timestamp = timestamp or str(int(time.time()))
        encrypt = PrpCrypto(self.key).encrypt(xml, self.corp_id).decode()
        sig = signature(self.token, timestamp, nonce, encrypt)
        body = (f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName>"
                f"<Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[1]]></AgentID></xml>")
        return {"msg_signature": sig, "timestamp": timestamp, "nonce": nonce}, body
