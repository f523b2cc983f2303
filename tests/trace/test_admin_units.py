"""Tests for trace.admin_units: the 2025 administrative units of Hưng Yên and the old→new mapping.

Facts asserted below were checked against Resolution 1666/NQ-UBTVQH15 (clause numbers in
comments) and the GSO code list (Letter 1027/CTK-CSCL / Decision 19/2025/QĐ-TTg); see
trace/data/SOURCES.md.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from trace import admin_units
from trace.admin_units import Commune, FormerCommune

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "trace" / "data"
CODE_RE = re.compile(r"^\d{5}$")

OLD_HUNG_YEN_DISTRICTS = {
    "Thành phố Hưng Yên",
    "Thị xã Mỹ Hào",
    "Huyện Ân Thi",
    "Huyện Khoái Châu",
    "Huyện Kim Động",
    "Huyện Phù Cừ",
    "Huyện Tiên Lữ",
    "Huyện Văn Giang",
    "Huyện Văn Lâm",
    "Huyện Yên Mỹ",
}
OLD_THAI_BINH_DISTRICTS = {
    "Thành phố Thái Bình",
    "Huyện Đông Hưng",
    "Huyện Hưng Hà",
    "Huyện Kiến Xương",
    "Huyện Quỳnh Phụ",
    "Huyện Thái Thụy",
    "Huyện Tiền Hải",
    "Huyện Vũ Thư",
}


def _names(units: list[Commune] | list[FormerCommune]) -> set[str]:
    return {u.name for u in units}


# ----------------------------------------------------------------------------- current units


def test_exactly_104_current_units_93_xa_11_phuong() -> None:
    units = admin_units.communes()
    assert len(units) == 104  # Resolution 1666, Art. 1 clause 105
    kinds = [u.kind for u in units]
    assert kinds.count("xa") == 93
    assert kinds.count("phuong") == 11


def test_current_codes_unique_five_digits_and_sorted() -> None:
    codes = [u.code for u in admin_units.communes()]
    assert all(CODE_RE.match(c) for c in codes)
    assert len(set(codes)) == len(codes)
    assert codes == sorted(codes)


def test_current_units_are_in_new_hung_yen_and_named_by_kind() -> None:
    names = [u.name for u in admin_units.communes()]
    assert len(set(names)) == len(names)
    for unit in admin_units.communes():
        assert unit.province_code == "33"
        assert unit.province_name == "Tỉnh Hưng Yên"
        prefix = "Phường " if unit.kind == "phuong" else "Xã "
        assert unit.name.startswith(prefix)
        assert unicodedata.is_normalized("NFC", unit.name)


def test_known_current_codes() -> None:
    assert admin_units.commune("12070") == Commune("12070", "Xã Hoàn Long", "xa", "33", "Tỉnh Hưng Yên")
    assert admin_units.commune("11953").name == "Phường Phố Hiến"
    assert admin_units.commune("13225").name == "Phường Thái Bình"
    assert admin_units.commune("12205").name == "Xã Khoái Châu"
    assert admin_units.commune("99999") is None
    assert admin_units.commune("") is None


def test_communes_is_cached_and_callers_cannot_corrupt_it() -> None:
    first = admin_units.communes()
    first.clear()
    assert len(admin_units.communes()) == 104


# ----------------------------------------------------------------------------- former units


def test_former_units_counts_and_codes() -> None:
    formers = admin_units.former_communes()
    assert len(formers) == 381
    codes = [f.code for f in formers]
    assert all(CODE_RE.match(c) for c in codes)
    assert len(set(codes)) == len(codes)
    by_province = {p: sum(f.province_name == p for f in formers) for p in ("Tỉnh Hưng Yên", "Tỉnh Thái Bình")}
    assert by_province == {"Tỉnh Hưng Yên": 139, "Tỉnh Thái Bình": 242}


def test_former_units_fields() -> None:
    for former in admin_units.former_communes():
        assert former.kind in {"xa", "phuong", "thi_tran"}
        prefix = {"xa": "Xã ", "phuong": "Phường ", "thi_tran": "Thị trấn "}[former.kind]
        assert former.name.startswith(prefix)
        if former.province_name == "Tỉnh Hưng Yên":
            assert former.district_name in OLD_HUNG_YEN_DISTRICTS
        else:
            assert former.province_name == "Tỉnh Thái Bình"
            assert former.district_name in OLD_THAI_BINH_DISTRICTS
        assert former.current_codes and len(set(former.current_codes)) == len(former.current_codes)
    assert set(admin_units.former_districts()) == OLD_HUNG_YEN_DISTRICTS | OLD_THAI_BINH_DISTRICTS


def test_every_former_current_code_exists() -> None:
    current = {u.code for u in admin_units.communes()}
    for former in admin_units.former_communes():
        assert set(former.current_codes) <= current, former


def test_every_current_unit_has_a_former_unit() -> None:
    for unit in admin_units.communes():
        formers = admin_units.formers_for_current(unit.code)
        assert formers, unit
        assert all(unit.code in f.current_codes for f in formers)


def test_mapping_is_consistent_both_ways() -> None:
    pairs_forward = {
        (f.code, c.code) for f in admin_units.former_communes() for c in admin_units.current_for_former(f.code)
    }
    pairs_backward = {(f.code, u.code) for u in admin_units.communes() for f in admin_units.formers_for_current(u.code)}
    assert pairs_forward == pairs_backward
    assert len(pairs_forward) == 384  # 381 old units, three of them split in two


def test_exactly_three_old_communes_were_split() -> None:
    split = {f.name: set(f.current_codes) for f in admin_units.former_communes() if len(f.current_codes) > 1}
    # Resolution 1666: clauses 27/29 (Đình Dù), 28/29 (Lạc Đạo), 11/95 (Ngọc Thanh)
    assert split == {
        "Xã Đình Dù": {"12004", "11995"},
        "Xã Lạc Đạo": {"11992", "11995"},
        "Xã Ngọc Thanh": {"12322", "11983"},
    }


def test_raw_csv_files_match_the_module() -> None:
    with (DATA_DIR / "communes.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["code", "name", "kind", "province_code", "province_name"]
    assert [r["code"] for r in rows] == [u.code for u in admin_units.communes()]
    with (DATA_DIR / "former_communes.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [
        "code",
        "name",
        "kind",
        "district_name",
        "province_name",
        "current_codes",
    ]
    assert len(rows) == 381


# ----------------------------------------------------------------------------- known facts


def test_dong_tao_became_hoan_long() -> None:
    # Clause 25: "các xã Đông Tảo, Đồng Than và Hoàn Long thành xã mới có tên gọi là xã Hoàn Long"
    dong_tao = admin_units.former_commune("12208")
    assert dong_tao == FormerCommune("12208", "Xã Đông Tảo", "xa", "Huyện Khoái Châu", "Tỉnh Hưng Yên", ("12070",))
    assert [c.name for c in admin_units.current_for_former("12208")] == ["Xã Hoàn Long"]
    assert _names(admin_units.formers_for_current("12070")) == {
        "Xã Đông Tảo",
        "Xã Đồng Than",
        "Xã Hoàn Long",
    }
    assert {f.district_name for f in admin_units.formers_for_current("12070")} == {
        "Huyện Khoái Châu",
        "Huyện Yên Mỹ",
    }


def test_bai_say_became_pham_ngu_lao() -> None:
    # Clause 15: "các xã Bắc Sơn (huyện Ân Thi), Phù Ủng, Đào Dương và Bãi Sậy ... xã Phạm Ngũ Lão"
    assert [c.code for c in admin_units.current_for_former("12151")] == ["12148"]
    assert admin_units.commune("12148").name == "Xã Phạm Ngũ Lão"
    assert _names(admin_units.formers_for_current("12148")) == {
        "Xã Bắc Sơn",
        "Xã Phù Ủng",
        "Xã Đào Dương",
        "Xã Bãi Sậy",
    }
    assert {f.district_name for f in admin_units.formers_for_current("12148")} == {"Huyện Ân Thi"}


def test_old_pham_ngu_lao_of_kim_dong_went_to_luong_bang() -> None:
    # Clause 9: the old xã Phạm Ngũ Lão (Kim Động) is not today's xã Phạm Ngũ Lão (clause 15)
    old = admin_units.former_commune("12292")
    assert (old.name, old.district_name) == ("Xã Phạm Ngũ Lão", "Huyện Kim Động")
    assert [c.name for c in admin_units.current_for_former("12292")] == ["Xã Lương Bằng"]


def test_phuong_thai_binh_composition() -> None:
    # Clause 100: Lê Hồng Phong, Bồ Xuyên, Tiền Phong, Tân Hòa (huyện Vũ Thư), Phúc Thành,
    # Tân Phong, Tân Bình
    formers = admin_units.formers_for_current("13225")
    assert _names(formers) == {
        "Phường Lê Hồng Phong",
        "Phường Bồ Xuyên",
        "Phường Tiền Phong",
        "Xã Tân Hòa",
        "Xã Phúc Thành",
        "Xã Tân Phong",
        "Xã Tân Bình",
    }
    tan_hoa = [f for f in formers if f.name == "Xã Tân Hòa"]
    assert [f.district_name for f in tan_hoa] == ["Huyện Vũ Thư"]
    assert {f.province_name for f in formers} == {"Tỉnh Thái Bình"}


def test_ngoc_thanh_split_between_hiep_cuong_and_son_nam() -> None:
    # Clauses 11 and 95
    assert [c.name for c in admin_units.current_for_former("12322")] == [
        "Phường Sơn Nam",
        "Xã Hiệp Cường",
    ]
    assert "Xã Ngọc Thanh" in _names(admin_units.formers_for_current("11983"))
    assert "Xã Ngọc Thanh" in _names(admin_units.formers_for_current("12322"))


def test_same_name_communes_are_told_apart_by_district() -> None:
    # "Minh Tân" existed in four districts: clauses 5, 61, 73, 83
    minh_tan = {
        f.district_name: admin_units.current_for_former(f.code)[0].name
        for f in admin_units.former_communes()
        if f.name == "Xã Minh Tân"
    }
    assert minh_tan == {
        "Huyện Phù Cừ": "Xã Quang Hưng",
        "Huyện Đông Hưng": "Xã Tiên Hưng",
        "Huyện Hưng Hà": "Xã Lê Quý Đôn",
        "Huyện Kiến Xương": "Xã Bình Thanh",
    }


def test_unknown_codes() -> None:
    assert admin_units.former_commune("00001") is None
    assert admin_units.current_for_former("00001") == []
    assert admin_units.formers_for_current("00001") == []


# ----------------------------------------------------------------------------- district lookup


@pytest.mark.parametrize("query", ["Huyện Khoái Châu", "Khoái Châu", "huyện khoái châu", "  Khoái   Châu "])
def test_district_lookup_with_or_without_prefix(query: str) -> None:
    formers = admin_units.former_communes_in_district(query)
    assert len(formers) == 20
    assert "Xã Đông Tảo" in _names(formers)
    assert {f.district_name for f in formers} == {"Huyện Khoái Châu"}
    assert [f.code for f in formers] == sorted(f.code for f in formers)


def test_district_lookup_normalises_unicode() -> None:
    decomposed = unicodedata.normalize("NFD", "Huyện Khoái Châu")
    assert len(admin_units.former_communes_in_district(decomposed)) == 20


def test_district_lookup_cities_and_towns() -> None:
    assert len(admin_units.former_communes_in_district("Thành phố Thái Bình")) == 19
    assert len(admin_units.former_communes_in_district("TP. Thái Bình")) == 19
    assert len(admin_units.former_communes_in_district("Thái Bình")) == 19
    assert len(admin_units.former_communes_in_district("Thị xã Mỹ Hào")) == 13
    assert len(admin_units.former_communes_in_district("Mỹ Hào")) == 13
    # a prefix that does not fit the district does not match
    assert admin_units.former_communes_in_district("Huyện Thái Bình") == []
    assert admin_units.former_communes_in_district("Huyện Không Có") == []
    assert admin_units.former_communes_in_district("") == []


def test_districts_partition_the_former_units() -> None:
    total = sum(len(admin_units.former_communes_in_district(d)) for d in admin_units.former_districts())
    assert total == len(admin_units.former_communes())


# ----------------------------------------------------------------------------- search


@pytest.mark.parametrize("query", ["hoan long", "Hoan Long", "HOAN LONG", "Hoàn Long", "xã hoàn long", "xa hoan long"])
def test_search_finds_hoan_long(query: str) -> None:
    assert [c.name for c in admin_units.search_communes(query)] == ["Xã Hoàn Long"]


def test_search_handles_d_with_stroke_and_substrings() -> None:
    assert _names(admin_units.search_communes("duong hao")) == {"Phường Đường Hào"}
    assert _names(admin_units.search_communes("dong hung")) == {
        "Xã Đông Hưng",
        "Xã Bắc Đông Hưng",
        "Xã Nam Đông Hưng",
    }
    assert _names(admin_units.search_communes("phuong")) == {
        u.name for u in admin_units.communes() if u.kind == "phuong"
    }


def test_search_with_diacritics_respects_them() -> None:
    assert _names(admin_units.search_communes("Đông Hưng")) == {
        "Xã Đông Hưng",
        "Xã Bắc Đông Hưng",
        "Xã Nam Đông Hưng",
    }
    assert admin_units.search_communes("Đồng Hưng") == []
    # old-style tone placement ("Thuỵ") equals the new one ("Thụy")
    assert admin_units.search_communes("Thái Thuỵ") == admin_units.search_communes("Thái Thụy") != []


def test_search_blank_and_missing() -> None:
    assert admin_units.search_communes("") == []
    assert admin_units.search_communes("   ") == []
    assert admin_units.search_communes("khong ton tai") == []


# ----------------------------------------------------------------------------- layering


def test_module_does_not_import_web_or_worker_layers() -> None:
    code = (
        "import sys; from trace import admin_units; admin_units.communes(); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'fastapi', 'starlette', 'celery', 'api', 'labels', 'workers', "
        "'sqlalchemy', 'sqlmodel'}); "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# ----------------------------------------------------------------------------- lists to choose from


def test_commune_choices_are_every_commune_by_name_without_its_kind_accents_folded() -> None:
    choices = admin_units.commune_choices()
    assert sorted(code for code, _ in choices) == [c.code for c in admin_units.communes()]
    bare = [admin_units.fold_vietnamese(name.split(" ", 1)[1]) for _, name in choices]
    assert bare == sorted(bare)
    assert choices != [(c.code, c.name) for c in admin_units.communes()]  # not by code


def test_former_choices_are_those_that_became_the_chosen_commune_else_all_grouped_by_old_district() -> None:
    hoan_long = next(c.code for c in admin_units.communes() if c.name == "Xã Hoàn Long")
    chosen = admin_units.former_choices(hoan_long)
    assert {code for _, rows in chosen for code, _ in rows} == {
        f.code for f in admin_units.formers_for_current(hoan_long)
    }
    assert all(group.endswith(", Tỉnh Hưng Yên") for group, _ in chosen)
    everything = admin_units.former_choices(None)
    assert admin_units.former_choices("99999") == everything  # no such commune: all of them
    assert sum(len(rows) for _, rows in everything) == len(admin_units.former_communes())
    assert [group for group, _ in everything] == sorted(group for group, _ in everything)
