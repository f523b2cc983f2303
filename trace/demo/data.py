"""The demo data set's fixed tables: invented organisations, users, places and products, real communes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta, timezone
from typing import Any

from trace import admin_units
from trace.access import Role
from trace.designations.models import DesignationKind, InheritRule
from trace.identifiers import gtin_from_company_prefix
from trace.locations import LocationKind
from trace.organisations import OrgKind

SEED = 2026
DEMO_PASSWORD = "hytrace-demo-2026"  # a published demo password: never use on a real instance
TAX_PREFIX = "99995200"  # invented tax codes 99995200NN; no real Vietnamese code looks like this
DEMO_TAX_CODE = TAX_PREFIX + "00"  # the marker: the demo Department of Science and Technology
TZ = timezone(timedelta(hours=7), "ICT")
SEASON_END = (10, 15)  # the last event of the season is before 15 October

# key: (kind, name, tax suffix, commune code, extra fields)
ORGS: dict[str, tuple[OrgKind, str, str, str, dict[str, Any]]] = {
    "dost": (OrgKind.AUTHORITY, "Sở Khoa học và Công nghệ tỉnh Hưng Yên (dữ liệu mẫu)", "00", "11953", {}),
    "qltt": (OrgKind.AUTHORITY, "Đội Quản lý thị trường số 1 (dữ liệu mẫu)", "01", "11953", {}),
    "coop": (
        OrgKind.COOPERATIVE,
        "HTX Nhãn lồng Hồng Châu (dữ liệu mẫu)",
        "02",
        "11980",
        {"practices_public": True, "name_en": "Hong Chau Longan Cooperative (sample data)"},
    ),
    "farm": (
        OrgKind.FARM,
        "Hộ chăn nuôi gà Đông Tảo Trần Văn Mẫu (dữ liệu mẫu)",
        "03",
        "12070",
        {"contact_person": "Trần Văn Mẫu", "personal_name_consent": False},
    ),
    "proc": (OrgKind.PROCESSOR, "Công ty TNHH Long nhãn Phố Hiến (dữ liệu mẫu)", "04", "12364", {}),
    "dist": (OrgKind.DISTRIBUTOR, "Công ty TNHH Phân phối Nông sản Sông Hồng (dữ liệu mẫu)", "05", "12103", {}),
    "shop1": (OrgKind.RETAILER, "Cửa hàng Đặc sản Phố Hiến (dữ liệu mẫu)", "06", "11953", {}),
    "shop2": (OrgKind.RETAILER, "Cửa hàng Nông sản sạch Văn Giang (dữ liệu mẫu)", "07", "12019", {}),
    # Holders of the real designations below; the real holders' names are not used (the DoST above stands in
    # for the real Department that manages the longan GI).
    "hga": (OrgKind.DESIGNATION_HOLDER, "Hội sản xuất và kinh doanh gà Đông Tảo (dữ liệu mẫu)", "08", "12070", {}),
    "hong": (OrgKind.DESIGNATION_HOLDER, "Hội nuôi ong mật hoa nhãn Hưng Yên (dữ liệu mẫu)", "09", "11953", {}),
    "hgio": (
        OrgKind.DESIGNATION_HOLDER,
        "Hội sản xuất và kinh doanh giò chả Trai Trang (dữ liệu mẫu)",
        "10",
        "12073",
        {},
    ),
    "htoi": (OrgKind.DESIGNATION_HOLDER, "Hội sản xuất và kinh doanh tỏi Thái Thụy (dữ liệu mẫu)", "11", "12826", {}),
}
# (org key, email, full name, role)
USERS = [
    ("dost", "so-khcn@example.com", "Lê Thị Mẫu", Role.ORG_ADMIN),
    ("qltt", "qltt@example.com", "Đỗ Văn Kiểm", Role.INSPECTOR),
    ("coop", "htx-nhanlong@example.com", "Nguyễn Thị Mẫu", Role.ORG_ADMIN),
    ("coop", "xavien-nhanlong@example.com", "Phạm Văn Mẫu", Role.MEMBER),
    ("farm", "trai-ga@example.com", "Trần Văn Mẫu", Role.ORG_ADMIN),
    ("proc", "long-nhan@example.com", "Vũ Thị Mẫu", Role.ORG_ADMIN),
    ("dist", "phan-phoi@example.com", "Hoàng Văn Mẫu", Role.ORG_ADMIN),
    ("shop1", "cuahang-phohien@example.com", "Bùi Thị Mẫu", Role.ORG_ADMIN),
    ("shop2", "cuahang-vangiang@example.com", "Đặng Văn Mẫu", Role.ORG_ADMIN),
    ("hga", "hoi-gadongtao@example.com", "Ngô Văn Mẫu", Role.ORG_ADMIN),
    ("hong", "hoi-ong@example.com", "Lý Thị Mẫu", Role.ORG_ADMIN),
    ("hgio", "hoi-giocha@example.com", "Mai Văn Mẫu", Role.ORG_ADMIN),
    ("htoi", "hoi-toi@example.com", "Đinh Thị Mẫu", Role.ORG_ADMIN),
]
# Growing areas of the cooperative: (pre-2025 district, pre-2025 commune); today's commune follows.
AREAS = [
    ("Thành phố Hưng Yên", "Xã Quảng Châu"),
    ("Thành phố Hưng Yên", "Xã Hoàng Hanh"),
    ("Thành phố Hưng Yên", "Xã Tân Hưng"),
    ("Kim Động", "Xã Ngọc Thanh"),
]  # the last was split
# key: (org, kind, name, code, commune, former commune)
PLACES: dict[str, tuple[str, LocationKind, str, str | None, str, str | None]] = {
    "farm": ("farm", LocationKind.FARM, "Trại gà Đông Tảo (dữ liệu mẫu)", None, "12070", "12208"),
    "plant": (
        "proc",
        LocationKind.PACKING_FACILITY,
        "Xưởng sấy và đóng gói (dữ liệu mẫu)",
        "VN-HY-PH-DEMO-01",
        "12364",
        None,
    ),
    "wh": ("dist", LocationKind.WAREHOUSE, "Kho Mỹ Hào (dữ liệu mẫu)", None, "12103", None),
    "shop1": ("shop1", LocationKind.SHOP, "Quầy Phố Hiến (dữ liệu mẫu)", None, "11953", None),
    "shop2": ("shop2", LocationKind.SHOP, "Quầy Văn Giang (dữ liệu mẫu)", None, "12019", None),
}
HOME = {"proc": "plant", "dist": "wh", "shop1": "shop1", "shop2": "shop2", "farm": "farm"}
# key: (org, company prefix, item reference, name, name_en, category, unit, package size)
PRODUCTS: dict[str, tuple[str, str, int, str, str, str, str, str | None]] = {
    "fresh": (
        "coop",
        "9520001",
        1,
        "Nhãn lồng Hưng Yên tươi (dữ liệu mẫu)",
        "Hung Yen longan, fresh (sample data)",
        "longan_fresh",
        "kg",
        None,
    ),
    "dried": (
        "proc",
        "9520002",
        1,
        "Long nhãn Hưng Yên sấy khô, hộp 500 g (dữ liệu mẫu)",
        "Dried Hung Yen longan, 500 g box (sample data)",
        "longan_dried",
        "kg",
        "0.5",
    ),
    "meat": (
        "proc",
        "9520002",
        2,
        "Thịt gà Đông Tảo đóng khay (dữ liệu mẫu)",
        "Packed Dong Tao chicken meat (sample data)",
        "chicken_meat",
        "kg",
        "1",
    ),
    "chicken": (
        "farm",
        "9520003",
        1,
        "Gà Đông Tảo, gà sống (dữ liệu mẫu)",
        "Dong Tao chicken, live (sample data)",
        "chicken_live",
        "head",
        None,
    ),
}


@dataclass(frozen=True)
class DesignationSpec:
    """One of the province's real designations (numbers and dates from public sources; holders invented)."""

    holder: str  # org key
    kind: DesignationKind
    name_vi: str
    name_en: str
    registration_number: str | None
    decision_number: str | None
    decision_date: date | None
    categories: list[str]
    area_former_districts: list[str]
    rules_text: str
    area_former_communes: list[str] = field(default_factory=list)
    derived_categories: list[str] = field(default_factory=list)
    inherit_rule: InheritRule = InheritRule.NEVER


def _former_province_districts(province: str) -> list[str]:
    return [
        d
        for d in admin_units.former_districts()
        if admin_units.former_communes_in_district(d)[0].province_name == province
    ]


_OLD_RULE = "Khu vực bảo hộ ghi theo địa giới hành chính trước ngày 01/7/2025."
DESIGNATIONS: dict[str, DesignationSpec] = {
    "longan": DesignationSpec(
        "dost",
        DesignationKind.GEOGRAPHICAL_INDICATION,
        "Nhãn lồng Hưng Yên",
        "Hung Yen longan",
        "00055",
        "186/QĐ-SHTT",
        date(2017, 1, 23),
        ["longan_fresh"],
        ["Thành phố Hưng Yên", "Huyện Khoái Châu", "Huyện Tiên Lữ", "Huyện Kim Động"],
        f"{_OLD_RULE} Vùng: thành phố Hưng Yên và các huyện Khoái Châu, Tiên Lữ, Kim Động. Long nhãn sấy mang "
        "chỉ dẫn địa lý chỉ khi mọi lô nhãn tươi đầu vào đều mang chỉ dẫn (tóm tắt cho dữ liệu mẫu).",
        derived_categories=["longan_dried"],
        inherit_rule=InheritRule.ALL_INPUTS,
    ),
    "chicken": DesignationSpec(
        "hga",
        DesignationKind.COLLECTIVE_TRADEMARK,
        "Gà Đông Tảo",
        "Dong Tao chicken",
        None,
        None,
        None,
        ["chicken_live"],
        [],
        f"{_OLD_RULE} Vùng: xã Đông Tảo cũ, huyện Khoái Châu (nay thuộc xã Hoàn Long). Số văn bằng "
        "không ghi trong dữ liệu mẫu.",
        area_former_communes=["12208"],
    ),
    "honey": DesignationSpec(
        "hong",
        DesignationKind.CERTIFICATION_TRADEMARK,
        "Mật ong hoa nhãn Hưng Yên",
        "Hung Yen longan-flower honey",
        None,
        "34713/QĐ-SHTT",
        date(2016, 6, 13),
        ["honey"],
        _former_province_districts("Tỉnh Hưng Yên"),
        f"{_OLD_RULE} Nguồn công khai dùng cho dữ liệu mẫu không ghi khu vực: tạm lấy toàn bộ tỉnh Hưng Yên "
        "cũ (trước 01/7/2025).",
    ),
    "giocha": DesignationSpec(
        "hgio",
        DesignationKind.COLLECTIVE_TRADEMARK,
        "Giò chả Trai Trang",
        "Trai Trang pork rolls",
        "422823",
        "41357/QĐ-SHTT",
        date(2022, 5, 19),
        ["pork_roll"],
        ["Huyện Yên Mỹ"],
        f"{_OLD_RULE} Nguồn công khai dùng cho dữ liệu mẫu chỉ ghi huyện Yên Mỹ: tạm lấy toàn huyện Yên Mỹ cũ.",
    ),
    "garlic": DesignationSpec(
        "htoi",
        DesignationKind.COLLECTIVE_TRADEMARK,
        "Tỏi Thái Thụy",
        "Thai Thuy garlic",
        None,
        None,
        None,
        ["garlic"],
        ["Huyện Thái Thụy"],
        f"{_OLD_RULE} Vùng: huyện Thái Thụy cũ (tỉnh Thái Bình cũ). Số văn bằng không ghi trong dữ liệu mẫu.",
    ),
}
# Rights to use granted in the season: (designation, grantee, holder's decision, products, place, yearly quota).
RIGHTS: list[tuple[str, str, str, list[str], str | None, int | None]] = [
    ("longan", "coop", "DEMO-01/QĐ-SKHCN", ["fresh"], None, 60000),
    ("longan", "proc", "DEMO-02/QĐ-SKHCN", ["dried"], None, 20000),
    ("chicken", "farm", "DEMO-01/QĐ-HGĐT", ["chicken"], "farm", None),
]

# Certificates held in the season (invented numbers and bodies, marked as sample data): (holder, kind,
# OCOP stars, number, issuer, products (empty: all), years before / after the season year it is valid).
CERTIFICATES: list[tuple[str, str, int | None, str, str, list[str], tuple[int, int]]] = [
    (
        "coop",
        "vietgap",
        None,
        "VG-DEMO-0126 (dữ liệu mẫu)",
        "Tổ chức chứng nhận VietGAP Mẫu (dữ liệu mẫu)",
        ["fresh"],
        (1, 1),
    ),
    (
        "proc",
        "ocop",
        4,
        "OCOP-HY-DEMO-04 (dữ liệu mẫu)",
        "Ủy ban nhân dân tỉnh Hưng Yên (dữ liệu mẫu)",
        ["dried"],
        (2, 1),
    ),
]


def demo_gtin(key: str) -> str:
    """The GTIN-14 of a demo product (GS1 prefix 952: demonstrations only)."""
    _, prefix, ref, *_ = PRODUCTS[key]
    return gtin_from_company_prefix(prefix, ref)


def growing_area_communes() -> list[tuple[str, str]]:
    """(today's commune, pre-2025 commune) of each demo growing area, from the real unit lists."""
    out = []
    for district, name in AREAS:
        former = next(f for f in admin_units.former_communes_in_district(district) if f.name == name)
        out.append((former.current_codes[0], former.code))
    return out
