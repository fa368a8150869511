"""Looking inside certificates: PDF text, the QR code, the VC-JWT."""

from __future__ import annotations

import io
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm


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
    """Verify a VC-JWT as a third party would: the header's kid names a key of the issuer's
    published JWKS (the DID URL fragment)."""
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "EdDSA"
    assert header["kid"].startswith(did + "#")
    kid = header["kid"].split("#", 1)[1]
    jwk = next(k for k in jwks["keys"] if k["kid"] == kid)
    key = OKPAlgorithm.from_jwk(jwk)
    return jwt.decode(token, key, algorithms=["EdDSA"], options={"verify_aud": False})
