"""Pure rendering of QR labels: label data in, bytes out (PNG, SVG, PDF, ZPL). No database."""

__all__: list[str] = []
