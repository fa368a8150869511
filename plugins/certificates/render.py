"""The certificate PDF, drawn with reportlab: school name and logo, learner, course, instructor,
date, the verification URL as a QR code (reportlab's own QR widget) and its public id.

Names are drawn with an embedded (subset) TrueType font that covers Greek, Cyrillic and
accented Latin; reportlab's built-in Helvetica is Latin-1 only and would print a Greek name as
black boxes.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# reportlab is imported where a PDF is drawn, not here: every process imports this plugin
# (each CLI command, each gunicorn worker) and most never render a certificate; importing
# reportlab costs ~0.18 s of start-up CPU each time.
if TYPE_CHECKING:
    from reportlab.graphics.barcode.qrencoder import QRCode
    from reportlab.pdfgen import canvas

log = logging.getLogger(__name__)

# Debian's fonts-dejavu-core (also what most Linux distributions ship); the first that exists.
FONT_CANDIDATES = (
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
     "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
)
REGULAR, BOLD = "LearnplatCert", "LearnplatCert-Bold"
_fonts_lock = threading.Lock()
_fonts_ready: str | None = None


def find_fonts(configured: str = "") -> tuple[str, str, bool]:
    """(regular, bold, covers_unicode): the configured font, DejaVu Sans, or reportlab's Vera
    (shipped with reportlab, Latin only) as the last resort."""
    if configured:
        bold = configured.replace(".ttf", "-Bold.ttf")
        return configured, bold if os.path.exists(bold) else configured, True
    for regular, bold in FONT_CANDIDATES:
        if os.path.exists(regular):
            return regular, bold if os.path.exists(bold) else regular, True
    import reportlab

    base = Path(reportlab.__file__).parent / "fonts"
    return str(base / "Vera.ttf"), str(base / "VeraBd.ttf"), False


def ensure_fonts(configured: str = "") -> bool:
    """Register the certificate fonts once per process; whether they cover non-Latin names."""
    global _fonts_ready
    with _fonts_lock:
        if _fonts_ready is None:
            regular, bold, unicode_ok = find_fonts(configured)
            if not unicode_ok:
                log.warning("certificates: no Unicode TrueType font found (install "
                            "fonts-dejavu-core or set certificates.font_path); names outside "
                            "Latin will not print")
            from reportlab.pdfbase import pdfmetrics
            from reportlab.pdfbase.ttfonts import TTFont

            pdfmetrics.registerFont(TTFont(REGULAR, regular))
            pdfmetrics.registerFont(TTFont(BOLD, bold))
            _fonts_ready = "unicode" if unicode_ok else "latin"
        return _fonts_ready == "unicode"


@dataclass(frozen=True)
class Template:
    """What a school may change (tenant setting certificates.template); unknown keys ignored."""

    orientation: str = "landscape"  # landscape | portrait
    heading: str = "Certificate of Completion"
    primary_color: str = "#1f3a5f"
    accent_color: str = "#c9a227"
    text_color: str = "#222222"
    statement: str = "has successfully completed the course"
    signature_label: str = "Instructor"

    @classmethod
    def from_settings(cls, raw: Any) -> Template:
        if not isinstance(raw, dict):
            return cls()
        known = {k: str(v) for k, v in raw.items() if k in cls.__dataclass_fields__}
        tpl = cls(**known)
        from reportlab.lib import colors

        for name in ("primary_color", "accent_color", "text_color"):
            try:
                colors.HexColor(getattr(tpl, name))
            except (ValueError, TypeError):
                tpl = cls(**{**known, name: getattr(cls, name)})
        if tpl.orientation not in ("landscape", "portrait"):
            tpl = cls(**{**known, "orientation": "landscape"})
        return tpl


@dataclass(frozen=True)
class CertificateContent:
    public_id: str
    school_name: str
    learner_name: str
    course_title: str
    instructor_name: str
    issued_at: dt.datetime
    verify_url: str
    logo: bytes | None = None
    signature: bytes | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _fit(text: str, font: str, size: float, width: float, smallest: float = 10) -> float:
    """The largest font size <= `size` at which `text` fits `width` (down to `smallest`)."""
    from reportlab.pdfbase import pdfmetrics

    while size > smallest and pdfmetrics.stringWidth(text, font, size) > width:
        size -= 1
    return size


def _image(c: canvas.Canvas, data: bytes, x: float, y: float, w: float, h: float) -> None:
    from reportlab.lib.utils import ImageReader

    try:
        c.drawImage(ImageReader(io.BytesIO(data)), x, y, width=w, height=h,
                    preserveAspectRatio=True, anchor="c", mask="auto")
    except Exception:  # a broken stored image must not stop the certificate
        log.warning("certificates: could not draw a template image", exc_info=True)


def draw_qr(c: canvas.Canvas, value: str, x: float, y: float, size: float) -> None:
    """`value` as a QR code (error correction M, 4-module quiet zone) in a size x size square.

    Encoded by reportlab's QrCodeWidget (reportlab.graphics.barcode.qr), whose own draw()
    would make one validated shape per dark run and cost two thirds of the certificate's
    rendering; the same runs are drawn here as one filled path instead.
    """
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.lib import colors

    widget = QrCodeWidget(value, barLevel="M")
    qr: QRCode = widget.qr  # type: ignore[attr-defined]  # reportlab's stub lacks QrCodeWidget.qr
    qr.make()
    count = qr.getModuleCount()
    border = widget.barBorder
    box = size / (count + 2 * border)
    path = c.beginPath()
    for r, row in enumerate(qr.modules):
        top = y + size - (r + border + 1) * box
        col = 0
        for dark, run in itertools.groupby(bool(m) for m in row):
            n = sum(1 for _ in run)
            if dark:
                path.rect(x + (col + border) * box, top, n * box, box)
            col += n
    c.saveState()
    c.setFillColor(colors.black)
    c.drawPath(path, stroke=0, fill=1)
    c.restoreState()


def render_pdf(content: CertificateContent, template: Template, font_path: str = "") -> bytes:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen import canvas

    ensure_fonts(font_path)
    size = landscape(A4) if template.orientation == "landscape" else A4
    width, height = size
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=size, pageCompression=1)
    c.setTitle(f"{content.course_title}: {content.learner_name}")
    c.setAuthor(content.school_name)
    c.setSubject(f"Certificate {content.public_id}")
    primary = colors.HexColor(template.primary_color)
    accent = colors.HexColor(template.accent_color)
    ink = colors.HexColor(template.text_color)

    # Frame.
    c.setStrokeColor(primary)
    c.setLineWidth(6)
    c.rect(24, 24, width - 48, height - 48)
    c.setStrokeColor(accent)
    c.setLineWidth(1.5)
    c.rect(36, 36, width - 72, height - 72)

    cx = width / 2
    usable = width - 160
    top = height - 90
    if content.logo:
        _image(c, content.logo, cx - 40, top - 50, 80, 60)
        top -= 70
    c.setFillColor(primary)
    c.setFont(BOLD, _fit(content.school_name, BOLD, 20, usable))
    c.drawCentredString(cx, top, content.school_name)

    c.setFillColor(primary)
    c.setFont(BOLD, _fit(template.heading, BOLD, 34, usable))
    c.drawCentredString(cx, top - 60, template.heading)

    c.setFillColor(ink)
    c.setFont(REGULAR, 14)
    c.drawCentredString(cx, top - 100, "This certifies that")
    c.setFillColor(primary)
    c.setFont(BOLD, _fit(content.learner_name, BOLD, 30, usable))
    c.drawCentredString(cx, top - 145, content.learner_name)
    c.setStrokeColor(accent)
    c.setLineWidth(1)
    c.line(cx - usable / 3, top - 155, cx + usable / 3, top - 155)

    c.setFillColor(ink)
    c.setFont(REGULAR, 14)
    c.drawCentredString(cx, top - 185, template.statement)
    c.setFillColor(primary)
    c.setFont(BOLD, _fit(content.course_title, BOLD, 22, usable))
    c.drawCentredString(cx, top - 220, content.course_title)

    # Signature block (left), date (centre), QR code (right).
    base_y = 90
    left = 110
    if content.signature:
        _image(c, content.signature, left, base_y + 8, 160, 50)
    c.setStrokeColor(ink)
    c.line(left, base_y, left + 180, base_y)
    c.setFillColor(ink)
    c.setFont(BOLD, _fit(content.instructor_name, BOLD, 12, 180, 7))
    c.drawCentredString(left + 90, base_y - 16, content.instructor_name)
    c.setFont(REGULAR, 10)
    c.drawCentredString(left + 90, base_y - 30, template.signature_label)

    c.setFont(REGULAR, 12)
    c.drawCentredString(cx, base_y - 16, content.issued_at.strftime("%d %B %Y"))
    c.setFont(REGULAR, 10)
    c.drawCentredString(cx, base_y - 30, "Date of issue")

    qr_size = 96.0
    draw_qr(c, content.verify_url, width - 110 - qr_size, base_y - 40, qr_size)
    qx = width - 110 - qr_size
    c.setFont(REGULAR, 7)
    c.setFillColor(ink)
    c.drawCentredString(qx + qr_size / 2, base_y - 50, f"Verify: {content.public_id}")
    c.setFont(REGULAR, 6)
    c.drawCentredString(cx, 44, content.verify_url)

    c.showPage()
    c.save()
    return out.getvalue()
