"""Pure rendering of QR labels: label data in, bytes out (PNG, SVG, PDF, ZPL). No database."""

from labels.model import TEMPLATES, LabelData, Template
from labels.pdf import render_pdf, write_pdf
from labels.qr import qr_matrix
from labels.raster import render_png, render_svg
from labels.render import FORMATS, Format, render, render_to
from labels.zpl import render_zpl

__all__ = [
    "FORMATS",
    "TEMPLATES",
    "Format",
    "LabelData",
    "Template",
    "qr_matrix",
    "render",
    "render_pdf",
    "render_png",
    "render_svg",
    "render_to",
    "render_zpl",
    "write_pdf",
]
