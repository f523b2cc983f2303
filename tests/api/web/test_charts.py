"""The dashboard's SVG charts."""

from __future__ import annotations


def test_a_chart_scales_to_a_phone_names_itself_and_writes_numbers_the_vietnamese_way() -> None:
    from api.web import charts

    svg = charts.grouped(
        "Lô hàng theo tháng",
        ["1/26", "2/26"],
        [charts.Series("Thu hoạch", [1234, 0]), charts.Series("Chế biến", [5, None])],
        "vi",
    )
    assert 'viewBox="0 0 360 200"' in svg and 'width="100%"' in svg and 'aria-label="Lô hàng theo tháng"' in svg
    assert "<title>Thu hoạch, 1/26: 1.234</title>" in svg and "<title>Chế biến, 2/26: 0</title>" in svg
    assert "<script" not in svg and "http://" not in svg.replace("http://www.w3.org/2000/svg", "")
    # no target set anywhere: no target line and no legend for one
    line = charts.against_target(
        "Tem", ["2025", "2026"], charts.Series("Thực hiện", [10, 20]), charts.Series("Chỉ tiêu", [None, None]), "vi"
    )
    assert 'class="target"' not in line and "Chỉ tiêu" not in line and 'class="actual"' in line
    # a gap in the targets is not bridged: two separate marks, no line invented between them
    gap = charts.against_target(
        "Tem",
        ["2024", "2025", "2026"],
        charts.Series("Thực hiện", [1, 2, 3]),
        charts.Series("Chỉ tiêu", [5, None, 7]),
        "vi",
    )
    assert 'class="target"' not in gap and gap.count("<title>Chỉ tiêu") == 2
    assert (
        "<" not in str(charts.bars("<b>", ["x"], [1], "vi")).split("<title", 1)[1].split(">", 1)[1].split("</title>")[0]
    )
