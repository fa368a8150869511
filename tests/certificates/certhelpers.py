"""Looking inside certificates (PDF text, the QR code, the VC-JWT), and `School`: a course
made through the API with learners who complete it."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm

from learnplat import db
from learnplat.tenancy import tenant_context


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def qr_codes(data: bytes) -> list[str]:
    """The QR codes of the PDF's first page: rendered with PDFium, decoded with zxing-cpp."""
    import pypdfium2 as pdfium
    import zxingcpp

    page = pdfium.PdfDocument(data)[0]
    image = page.render(scale=3).to_pil()
    return [code.text for code in zxingcpp.read_barcodes(image)]


def verify_jwt(token: str, jwks: dict[str, Any], did: str) -> dict[str, Any]:
    """Verify a VC-JWT as a third party would: the header's kid, a DID URL of the issuer, is
    the kid of a key in the issuer's published JWKS (as is, no splitting)."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"].startswith(did + "#")
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    key = OKPAlgorithm.from_jwk(jwk)
    return jwt.decode(token, key, algorithms=["EdDSA"], options={"verify_aud": False})


def verify_with_joserfc(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """joserfc (a JOSE implementation nobody here wrote) given the key set and the token
    alone: it picks the key by the header's kid. EdDSA is allowed by name (joserfc only
    assumes RFC 9864's "recommended" algorithms)."""
    import warnings

    from joserfc import jwt as jose_jwt
    from joserfc.jwk import KeySet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc's SecurityWarning: EdDSA, per RFC 9864
        token_obj = jose_jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["EdDSA"])
    return dict(token_obj.claims)


def verify_with_jwcrypto(token: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """jwcrypto's JWT with a JWKSet: it looks the header's kid up in the set."""
    import json

    from jwcrypto import jwk as jc_jwk
    from jwcrypto import jwt as jc_jwt

    keyset = jc_jwk.JWKSet.from_json(json.dumps(jwks))
    checked = jc_jwt.JWT(jwt=token, key=keyset, algs=["EdDSA"], expected_type="JWS")
    claims: dict[str, Any] = json.loads(checked.claims)
    return claims


def did_web_path(did: str) -> str:
    """The did:web method's resolution rule (did:web specification 3.2.1): the path of the DID
    document a DID names (the host is checked by the caller)."""
    from urllib.parse import unquote

    assert did.startswith("did:web:")
    host, *segments = did.removeprefix("did:web:").split(":")
    assert unquote(host)
    return "/" + "/".join([*segments, "did.json"]) if segments else "/.well-known/did.json"


def did_document_keys(doc: dict[str, Any], purpose: str = "assertionMethod"
                      ) -> dict[str, Any]:
    """A JWKS made of a DID document alone: the publicKeyJwk of each verification method
    listed for `purpose`, as they are."""
    allowed = set(doc[purpose])
    return {"keys": [m["publicKeyJwk"] for m in doc["verificationMethod"]
                     if m["id"] in allowed]}


def png(size: tuple[int, int] = (300, 120), colour: tuple[int, int, int] = (20, 60, 160)
        ) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def upload(client: Any, path: str, data: bytes, name: str = "file",
           filename: str = "logo.png", content_type: str = "image/png") -> Any:
    boundary = "lpcertboundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n").encode() \
        + data + f"\r\n--{boundary}--\r\n".encode()
    return client.post(path, body=body,
                       headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


@dataclass
class School:
    client: Any
    users: Any
    runtime: Any
    tenant: Any
    title: str = "Введение в Python"
    teacher_name: str = "José Müller"
    modules: int = 2
    course_id: int = 0
    module_ids: list[int] = field(default_factory=list)
    teacher: Any = None
    admin: Any = None
    a: Any = None

    def __post_init__(self) -> None:
        self.teacher = self.users.make("instructor", name=self.teacher_name)
        self.admin = self.users.make("admin", name="Admin")
        self.a = self.client.as_(self.admin.token)
        self.course_id, self.module_ids = self.course(self.title, self.modules)

    def course(self, title: str, modules: int = 2) -> tuple[int, list[int]]:
        t = self.client.as_(self.teacher.token)
        r = t.post("/courses", json={"title": title})
        assert r.status_code == 201, r.text
        cid = r.json["id"]
        mids = []
        for i in range(modules):
            r = t.post(f"/courses/{cid}/modules", json={"title": f"M{i}"})
            assert r.status_code == 201, r.text
            mids.append(r.json["id"])
        assert t.post(f"/courses/{cid}/submit").status_code == 200
        assert self.a.post(f"/courses/{cid}/approve").status_code == 200
        return cid, mids

    def learner(self, name: str = "Ada Lovelace", course_id: int | None = None) -> Any:
        """A student enrolled in the course, with `.client`."""
        student = self.users.make("student", name=name)
        student.client = self.client.as_(student.token)
        r = student.client.post(f"/courses/{course_id or self.course_id}/enroll")
        assert r.status_code == 201, r.text
        return student

    def complete(self, student: Any, course_id: int | None = None,
                 module_ids: list[int] | None = None) -> None:
        cid = course_id or self.course_id
        for mid in module_ids or self.module_ids:
            r = student.client.post(f"/progress/{cid}", json={"module_id": mid,
                                                              "completed": True})
            assert r.status_code == 200, r.text
        assert student.client.get(f"/progress/{cid}").json["completed"] is True

    def graduate(self, name: str = "Ada Lovelace") -> Any:
        """A learner who completed the course, with the completion event delivered (tasks run
        inline in unit tests: the certificate is issued when this returns)."""
        student = self.learner(name)
        self.complete(student)
        self.runtime.events.dispatch_pending()
        return student

    def in_tenant(self) -> Any:
        from contextlib import contextmanager

        @contextmanager
        def ctx() -> Any:
            with db.connection(), tenant_context(self.tenant), db.transaction():
                yield

        return ctx()
