"""Every refusal the domain raises has words in the workspace's one catalogue, in both languages."""

from __future__ import annotations

import ast
from pathlib import Path

from api import i18n
from api.web.words import WORDS, say
from trace.errors import Conflict, RuleViolation

ROOT = Path(__file__).resolve().parents[2]

# fmt: off
# Codes no workspace page meets, so the domain's own message (in problem+json, or the CLI's error line) is
# what their readers see. Each group names why; a code that a page starts to meet moves into the catalogue.
FALLS_BACK_BY_REASON: dict[str, set[str]] = {
    "the operator's CLI: backup, restore, moving to PostgreSQL, demo data": {
        "backup_invalid", "backup_missing", "database_missing", "demo_in_production", "demo_missing",
        "not_a_file", "not_sqlite", "password_missing", "restore_failed", "revision_mismatch",
        "source_not_sqlite", "target_not_empty", "target_not_migrated", "target_not_postgresql",
        "tool_failed", "tool_missing", "transfer_chain_broken", "transfer_count_mismatch", "transfer_log_broken",
        "restore_rolls_back_log",
    },
    "machine credentials (bearer tokens, API keys)": {"bad_api_key", "bad_token", "user_only"},
    "the EPCIS interface: documents, queries, master data": {
        "bad_epc", "bad_event_type", "bad_page_token", "bad_per_page", "bad_quantity", "bad_unit_uri",
        "duplicate_events", "duplicate_unit", "empty_capture", "epc_bad_gln", "epc_bad_gtin", "epcis_schema",
        "event_id_too_long", "not_a_document", "not_capturable", "one_lot_expected", "units_expected",
        "unknown_event", "unknown_master_data", "validation_error",
    },
    "the national portal's feed and keys, and the API lists' cursors": {
        "bad_cursor", "bad_limit", "bad_period", "portal_only", "unknown_feed", "not_an_authority",
    },
    "partner webhooks": {"bad_webhook_url", "not_your_events"},
    "the public log's API and verifiers (programs: logcheck, witnesses), its keys in settings": {
        "log_bad_range", "log_bad_sizes", "log_checkpoint_not_found", "log_checkpoint_not_ours",
        "log_cosignature_bad", "log_cosignature_unknown", "log_damaged", "log_event_not_found", "log_form_missing",
        "log_key_bad", "log_key_missing", "log_not_yet_included", "log_note_malformed", "log_note_too_large",
        "log_size_unpublished", "log_bad_tile", "log_tile_not_found",
    },
    "API writes the workspace has no page for yet (corrections, certifications, products, voids)": {
        "already_corrected", "correct_correction", "lot_in_use", "not_correctable", "shipment_received",
        "units_packed", "already_revoked", "certification_exists", "document_required",
        "not_certification_manager", "organisation_required", "revoked_in_future", "stars_not_allowed",
        "stars_required", "unknown_organisation", "check_digit_body", "company_prefix_length",
        "company_prefix_not_digits", "gtin_capacity_exhausted", "gtin_taken", "item_reference_type",
        "image_empty", "image_too_large", "image_unreadable", "already_void", "unknown_code", "unit_exists",
    },
    "caught inside trace/ (packing reports an unparsable line as 'unreadable')": {"element_string"},
}
# fmt: on
FALLS_BACK = set().union(*FALLS_BACK_BY_REASON.values())


def raised_codes() -> dict[str, str]:
    """Every ``code="..."`` passed to a call in trace/, with where it is first raised."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "trace").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                    if isinstance(keyword.value.value, str):
                        found.setdefault(keyword.value.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_the_scan_finds_the_codes_the_domain_raises() -> None:
    codes = raised_codes()
    assert {"not_holder", "exceeds_holding", "not_designation_holder", "lot_exists"} <= codes.keys()


def test_every_code_raised_in_trace_has_words_or_falls_back_on_purpose() -> None:
    missing = {code: where for code, where in raised_codes().items() if code not in WORDS and code not in FALLS_BACK}
    assert missing == {}


def test_the_fallback_list_names_only_codes_the_domain_raises_and_none_with_words() -> None:
    raised = raised_codes()
    assert sorted(FALLS_BACK - raised.keys()) == []  # a code no longer raised leaves the list
    assert sorted(FALLS_BACK & WORDS.keys()) == []


def test_every_catalogue_entry_is_translated_to_vietnamese() -> None:
    vietnamese = i18n.translations("vi")
    untranslated = [code for code, text in WORDS.items() if vietnamese.gettext(text) == text]
    assert untranslated == []


def test_say_fills_details_in_the_readers_number_format_and_falls_back_to_the_domain() -> None:
    error = RuleViolation("holds 1234.5", code="exceeds_holding", held="1234.5", asked="2000")
    assert say(error, "vi", unit="kg", lot="L-7") == "Tổ chức của bạn chỉ giữ 1.234,5 kg của lô L-7, không đủ 2.000 kg."
    assert say(error, "en", unit="kg", lot="L-7") == (
        "Your organisation holds only 1,234.5 kg of lot L-7, not 2,000 kg."
    )
    # an identifier of digits is shown as it is, not as a number
    packed = RuleViolation("packed", code="already_packed", parent="095212340000000426")
    assert say(packed, "vi") == "Đã được đóng vào thùng 095212340000000426."
    # words that want a detail the refusal lacks: the domain's message, never a half sentence
    assert say(RuleViolation("holds 3", code="exceeds_holding", held="3"), "vi") == "holds 3"
    assert say(Conflict("no words for this", code="no_such_code"), "vi") == "no words for this"
