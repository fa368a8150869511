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
