"""Unit tests for EMVCo merchant-presented QR payloads: checksum, layout, parsing, rendering."""

from __future__ import annotations

import dataclasses

import pytest

from tianping.payments.qr import (
    PAYLOAD_LENGTH_MAX,
    MerchantQr,
    QrChecksumMismatch,
    QrError,
    QrExpired,
    QrFieldTooLong,
    QrForeignScheme,
    QrInvalidField,
    QrMalformed,
    QrPayloadTooLong,
    QrUnsupportedCurrency,
    _qr_symbol,
    crc16_ccitt_false,
    encode_merchant_qr,
    parse_merchant_qr,
    render_png,
    render_svg,
)

EXPIRES_AT = 1_800_000_000

STATIC = MerchantQr(
    merchant_id="m-123",
    merchant_name="Tianping Cafe",
    merchant_city="Shanghai",
    category_code="5812",
    currency="CNY",
    country="CN",
)
DYNAMIC = dataclasses.replace(STATIC, amount_minor=1230, reference="ORD-1", expires_at=EXPIRES_AT)

# The dynamic code above written out by hand, object by object, so that a change to the layout
# (ids, lengths, order, amount text) fails here rather than only in a scanner.
DYNAMIC_PAYLOAD = (
    "000201"
    "010212"
    "2638" "0011cn.tianping" "0105m-123" "02101800000000"
    "52045812"
    "5303156"
    "540512.30"
    "5802CN"
    "5913Tianping Cafe"
    "6008Shanghai"
    "6209" "0505ORD-1"
    "6304515B"
)  # fmt: skip


def data_object(object_id: str, value: str) -> str:
    """Write one EMVCo data object, as an independent check of the encoder's framing."""
    return f"{object_id}{len(value):02d}{value}"


def seal(body: str) -> str:
    """Append a correct CRC object, so that tests can reach the checks behind the checksum."""
    body += "6304"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def static_objects(**overrides: str | None) -> dict[str, str]:
    """The top-level objects of the static code, with some replaced or (given None) removed."""
    objects = {
        "00": "01",
        "01": "11",
        "26": data_object("00", "cn.tianping") + data_object("01", "m-123"),
        "52": "5812",
        "53": "156",
        "58": "CN",
        "59": "Tianping Cafe",
        "60": "Shanghai",
    }
    for object_id, value in overrides.items():
        key = object_id.removeprefix("id_")
        if value is None:
            objects.pop(key, None)
        else:
            objects[key] = value
    return objects


def build(objects: dict[str, str]) -> str:
    """Seal objects, in the given order, into a payload with a valid CRC."""
    return seal("".join(data_object(key, value) for key, value in objects.items()))


# --------------------------------------------------------------------------- checksum


def test_crc_matches_the_published_check_value() -> None:
    """CRC-16/CCITT-FALSE of "123456789" is 0x29B1 in every CRC catalogue."""
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_crc_of_nothing_is_the_initial_value() -> None:
    assert crc16_ccitt_false(b"") == 0xFFFF


# --------------------------------------------------------------------------- encoding


def test_dynamic_code_has_the_documented_layout() -> None:
    assert encode_merchant_qr(DYNAMIC) == DYNAMIC_PAYLOAD


def test_static_code_has_no_amount_reference_or_expiry() -> None:
    """The static code is exactly the eight required objects: no 54, no 62, no expiry in 26."""
    assert encode_merchant_qr(STATIC) == build(static_objects())


def test_is_dynamic_follows_the_amount() -> None:
    assert not STATIC.is_dynamic
    assert DYNAMIC.is_dynamic


@pytest.mark.parametrize(
    ("currency", "amount_minor", "amount_text"),
    [("JPY", 1000, "1000"), ("KWD", 1234, "1.234"), ("USD", 5, "0.05"), ("EUR", 100, "1.00")],
)
def test_amount_uses_the_currency_exponent(
    currency: str, amount_minor: int, amount_text: str
) -> None:
    qr = dataclasses.replace(DYNAMIC, currency=currency, amount_minor=amount_minor)
    payload = encode_merchant_qr(qr)
    assert data_object("54", amount_text) in payload
    assert parse_merchant_qr(payload) == qr


def test_currency_is_written_as_its_iso_numeric_code() -> None:
    payload = encode_merchant_qr(dataclasses.replace(STATIC, currency="HKD"))
    assert "5303344" in payload


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("qr", [STATIC, DYNAMIC], ids=["static", "dynamic"])
def test_round_trip(qr: MerchantQr) -> None:
    assert parse_merchant_qr(encode_merchant_qr(qr), now=EXPIRES_AT - 1) == qr


def test_non_canonical_amount_text_is_read_exactly() -> None:
    """Other encoders may drop trailing zeros; "12.3" is still exactly 1230 fen."""
    body = DYNAMIC_PAYLOAD[:-8].replace("540512.30", "540412.3")
    assert parse_merchant_qr(seal(body)) == DYNAMIC


# --------------------------------------------------------------------------- tampering


def test_a_changed_character_is_a_checksum_mismatch() -> None:
    tampered = DYNAMIC_PAYLOAD.replace("12.30", "92.30")
    with pytest.raises(QrChecksumMismatch) as caught:
        parse_merchant_qr(tampered)
    assert caught.value.code == "qr_checksum_mismatch"


def test_lower_case_crc_is_refused() -> None:
    payload = DYNAMIC_PAYLOAD
    lowered = payload[:-4] + payload[-4:].lower()
    assert lowered != payload  # the CRC of this payload contains a letter
    with pytest.raises(QrMalformed):
        parse_merchant_qr(lowered)


def test_missing_crc_is_malformed() -> None:
    with pytest.raises(QrMalformed):
        parse_merchant_qr(DYNAMIC_PAYLOAD[:-8])


def test_non_ascii_is_malformed() -> None:
    with pytest.raises(QrMalformed):
        parse_merchant_qr(DYNAMIC_PAYLOAD.replace("Cafe", "Café"))


def test_non_string_payload_is_malformed() -> None:
    with pytest.raises(QrMalformed):
        parse_merchant_qr(DYNAMIC_PAYLOAD.encode())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- expiry


def test_dynamic_code_is_accepted_until_its_expiry() -> None:
    assert parse_merchant_qr(DYNAMIC_PAYLOAD, now=EXPIRES_AT - 1) == DYNAMIC


@pytest.mark.parametrize("now", [EXPIRES_AT, EXPIRES_AT + 3600])
def test_dynamic_code_is_refused_at_and_after_its_expiry(now: int) -> None:
    with pytest.raises(QrExpired) as caught:
        parse_merchant_qr(DYNAMIC_PAYLOAD, now=now)
    assert caught.value.code == "qr_expired"


def test_without_now_the_expiry_is_not_checked() -> None:
    assert parse_merchant_qr(DYNAMIC_PAYLOAD).expires_at == EXPIRES_AT


def test_static_code_never_expires() -> None:
    assert parse_merchant_qr(encode_merchant_qr(STATIC), now=10**10) == STATIC


# --------------------------------------------------------------------------- field limits


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merchant_name", "N" * 26),
        ("merchant_city", "C" * 16),
        ("merchant_id", "m" * 41),
        ("reference", "R" * 26),
    ],
)
def test_overlong_fields_are_refused(field: str, value: str) -> None:
    with pytest.raises(QrFieldTooLong) as caught:
        dataclasses.replace(DYNAMIC, **{field: value})
    assert caught.value.code == "qr_field_too_long"


def test_fields_at_their_limits_are_accepted() -> None:
    qr = dataclasses.replace(
        DYNAMIC,
        merchant_name="N" * 25,
        merchant_city="C" * 15,
        merchant_id="m" * 40,
        reference="R" * 25,
        amount_minor=10**12 - 1,  # "9999999999.99": thirteen characters
    )
    assert parse_merchant_qr(encode_merchant_qr(qr)) == qr


def test_amount_longer_than_thirteen_characters_is_refused() -> None:
    with pytest.raises(QrFieldTooLong):
        dataclasses.replace(DYNAMIC, amount_minor=10**12)


def test_overlong_payload_is_refused_before_parsing() -> None:
    with pytest.raises(QrPayloadTooLong) as caught:
        parse_merchant_qr("0" * (PAYLOAD_LENGTH_MAX + 1))
    assert caught.value.code == "qr_payload_too_long"


def test_overlong_amount_in_a_payload_is_refused() -> None:
    objects = static_objects(id_01="12")
    objects["54"] = "1" * 14
    with pytest.raises(QrFieldTooLong):
        parse_merchant_qr(build(objects))


# --------------------------------------------------------------------------- field values


@pytest.mark.parametrize(
    "changes",
    [
        {"amount_minor": 100},
        {"amount_minor": 100, "reference": "ORD-1"},
        {"reference": "ORD-1", "expires_at": EXPIRES_AT},
    ],
)
def test_dynamic_fields_come_together(changes: dict[str, object]) -> None:
    with pytest.raises(QrInvalidField):
        dataclasses.replace(STATIC, **changes)


@pytest.mark.parametrize("amount", [0, -1, True])
def test_amount_must_be_a_positive_int(amount: object) -> None:
    with pytest.raises(QrInvalidField):
        dataclasses.replace(DYNAMIC, amount_minor=amount)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("merchant_id", "m 123"),
        ("merchant_id", ""),
        ("merchant_name", "Caf\u00e9"),
        ("category_code", "581"),
        ("category_code", "58a2"),
        ("country", "cn"),
        ("expires_at", 0),
        ("expires_at", 10**10),
    ],
)
def test_invalid_field_values_are_refused(field: str, value: object) -> None:
    with pytest.raises(QrInvalidField) as caught:
        dataclasses.replace(DYNAMIC, **{field: value})
    assert caught.value.code == "qr_invalid_field"


@pytest.mark.parametrize("currency", ["XAU", "cny", "ABC"])
def test_unsupported_currency_is_refused_when_building(currency: str) -> None:
    with pytest.raises(QrUnsupportedCurrency) as caught:
        dataclasses.replace(STATIC, currency=currency)
    assert caught.value.code == "qr_unsupported_currency"


def test_unsupported_currency_number_is_refused_when_parsing() -> None:
    with pytest.raises(QrUnsupportedCurrency):
        parse_merchant_qr(build(static_objects(id_53="999")))


@pytest.mark.parametrize("amount", ["12,30", "1.234", "1e3", ".5", "0.00"])
def test_bad_amount_text_is_refused(amount: str) -> None:
    objects = static_objects(id_01="12")
    objects["26"] += data_object("02", str(EXPIRES_AT))
    objects["54"] = amount
    objects["62"] = data_object("05", "ORD-1")
    with pytest.raises(QrInvalidField):
        parse_merchant_qr(build(objects))


def test_static_initiation_with_an_amount_is_refused() -> None:
    objects = static_objects()
    objects["26"] += data_object("02", str(EXPIRES_AT))
    objects["54"] = "1.00"
    objects["62"] = data_object("05", "ORD-1")
    with pytest.raises(QrInvalidField):
        parse_merchant_qr(build(objects))


def test_dynamic_initiation_without_an_amount_is_refused() -> None:
    with pytest.raises(QrInvalidField):
        parse_merchant_qr(build(static_objects(id_01="12")))


@pytest.mark.parametrize("initiation", ["10", "13", "1A"])
def test_unknown_point_of_initiation_is_refused(initiation: str) -> None:
    with pytest.raises(QrMalformed):
        parse_merchant_qr(build(static_objects(id_01=initiation)))


@pytest.mark.parametrize("expiry", ["0123456789", "12345678901", "17x"])
def test_bad_expiry_text_is_refused(expiry: str) -> None:
    objects = static_objects(id_01="12")
    objects["26"] += data_object("02", expiry)
    objects["54"] = "1.00"
    objects["62"] = data_object("05", "ORD-1")
    with pytest.raises(QrInvalidField):
        parse_merchant_qr(build(objects))


# --------------------------------------------------------------------------- structure


def test_payload_format_indicator_must_come_first() -> None:
    objects = static_objects()
    reordered = {key: objects[key] for key in ["01", "00", "26", "52", "53", "58", "59", "60"]}
    with pytest.raises(QrMalformed):
        parse_merchant_qr(build(reordered))


def test_other_ids_may_come_in_any_order() -> None:
    objects = static_objects()
    reordered = {key: objects[key] for key in ["00", "60", "59", "58", "53", "52", "26", "01"]}
    assert parse_merchant_qr(build(reordered)) == STATIC


def test_crc_must_be_last() -> None:
    body = "".join(data_object(key, value) for key, value in static_objects().items())
    crc_first = seal(body)[-8:] + body
    with pytest.raises(QrMalformed):
        parse_merchant_qr(seal(crc_first))


def test_unsupported_payload_format_is_refused() -> None:
    with pytest.raises(QrMalformed):
        parse_merchant_qr(build(static_objects(id_00="02")))


def test_duplicate_ids_are_refused() -> None:
    body = "".join(data_object(key, value) for key, value in static_objects().items())
    with pytest.raises(QrMalformed, match="more than once"):
        parse_merchant_qr(seal(body + data_object("59", "Other Name")))


def test_duplicate_sub_tags_are_refused() -> None:
    account = static_objects()["26"] + data_object("01", "m-999")
    with pytest.raises(QrMalformed, match="more than once"):
        parse_merchant_qr(build(static_objects(id_26=account)))


@pytest.mark.parametrize("missing", ["01", "52", "53", "58", "59", "60"])
def test_missing_required_fields_are_refused(missing: str) -> None:
    with pytest.raises(QrMalformed, match="missing"):
        parse_merchant_qr(build(static_objects(**{f"id_{missing}": None})))


def test_missing_merchant_id_is_refused() -> None:
    with pytest.raises(QrMalformed, match="merchant id"):
        parse_merchant_qr(build(static_objects(id_26=data_object("00", "cn.tianping"))))


@pytest.mark.parametrize("object_id", ["55", "56", "57", "65", "79"])
def test_ids_that_change_the_payment_or_are_reserved_are_refused(object_id: str) -> None:
    objects = static_objects()
    objects[object_id] = "01"
    with pytest.raises(QrMalformed, match="not supported"):
        parse_merchant_qr(build(objects))


def test_other_networks_and_descriptive_fields_are_skipped() -> None:
    objects = static_objects()
    objects["02"] = "4000123412341234"  # another network's primitive account id
    objects["27"] = data_object("00", "com.example") + data_object("01", "42")
    objects["61"] = "200000"
    objects["64"] = data_object("00", "ZH") + data_object("01", "Cafe")
    objects["80"] = data_object("00", "org.example")
    assert parse_merchant_qr(build(objects)) == STATIC


def test_descriptive_additional_data_is_skipped() -> None:
    objects = static_objects(id_01="12")
    objects["26"] += data_object("02", str(EXPIRES_AT))
    objects["54"] = "12.30"
    objects["62"] = data_object("01", "BILL-9") + data_object("05", "ORD-1")
    objects["62"] += data_object("07", "T1") + data_object("08", "Lunch")
    assert parse_merchant_qr(build(objects)) == DYNAMIC


def test_reserved_additional_data_sub_tags_are_refused() -> None:
    objects = static_objects()
    objects["62"] = data_object("10", "x")
    with pytest.raises(QrMalformed, match="not supported"):
        parse_merchant_qr(build(objects))


def test_unknown_sub_tags_in_the_tianping_template_are_refused() -> None:
    account = static_objects()["26"] + data_object("03", "x")
    with pytest.raises(QrMalformed, match="unknown sub-tags"):
        parse_merchant_qr(build(static_objects(id_26=account)))


def test_another_schemes_code_is_foreign() -> None:
    account = data_object("00", "com.example") + data_object("01", "m-123")
    with pytest.raises(QrForeignScheme) as caught:
        parse_merchant_qr(build(static_objects(id_26=account)))
    assert caught.value.code == "qr_foreign_scheme"


def test_code_without_the_tianping_template_is_foreign() -> None:
    objects = static_objects(id_26=None)
    objects["27"] = data_object("00", "cn.tianping") + data_object("01", "m-123")
    with pytest.raises(QrForeignScheme):
        parse_merchant_qr(build(objects))


@pytest.mark.parametrize(
    "body",
    [
        "000201" + "5900",  # zero-length value
        "000201" + "5999Cafe",  # length runs past the end
        "000201" + "5A04Cafe",  # id is not two digits
        "000201" + "59",  # truncated header
    ],
)
def test_broken_lengths_are_malformed(body: str) -> None:
    with pytest.raises(QrMalformed):
        parse_merchant_qr(seal(body))


def test_crc_object_inside_a_longer_object_63_is_malformed() -> None:
    """A last object 63 whose length swallows "6304" and the digits is not a CRC object."""
    body = "".join(data_object(key, value) for key, value in static_objects().items())
    crafted = body + "6312" + "abcd" + "6304"
    crafted += f"{crc16_ccitt_false(crafted.encode('ascii')):04X}"
    with pytest.raises(QrMalformed, match="four characters"):
        parse_merchant_qr(crafted)


def test_every_error_has_a_stable_code() -> None:
    codes = {
        QrMalformed: "qr_malformed",
        QrChecksumMismatch: "qr_checksum_mismatch",
        QrExpired: "qr_expired",
        QrUnsupportedCurrency: "qr_unsupported_currency",
        QrFieldTooLong: "qr_field_too_long",
        QrPayloadTooLong: "qr_payload_too_long",
        QrInvalidField: "qr_invalid_field",
        QrForeignScheme: "qr_foreign_scheme",
    }
    for error_class, code in codes.items():
        assert issubclass(error_class, QrError)
        assert error_class("message").code == code


# --------------------------------------------------------------------------- rendering


def test_png_rendering_produces_a_png() -> None:
    image = render_png(DYNAMIC_PAYLOAD)
    assert image.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(image) > 100


def test_svg_rendering_produces_an_svg() -> None:
    document = render_svg(DYNAMIC_PAYLOAD)
    assert "<svg" in document
    assert document.rstrip().endswith("</svg>")


def test_symbol_uses_error_correction_m() -> None:
    assert _qr_symbol(DYNAMIC_PAYLOAD, 8).error == "M"


def test_larger_scale_gives_a_larger_image() -> None:
    assert len(render_png(DYNAMIC_PAYLOAD, scale=16)) > len(render_png(DYNAMIC_PAYLOAD, scale=2))


def test_rendering_refuses_a_damaged_payload() -> None:
    with pytest.raises(QrChecksumMismatch):
        render_png(DYNAMIC_PAYLOAD.replace("Cafe", "Cafx"))
    with pytest.raises(QrChecksumMismatch):
        render_svg(DYNAMIC_PAYLOAD.replace("Cafe", "Cafx"))


@pytest.mark.parametrize("scale", [0, 41, True])
def test_rendering_refuses_an_unreasonable_scale(scale: int) -> None:
    with pytest.raises(ValueError, match="scale"):
        render_png(DYNAMIC_PAYLOAD, scale=scale)
