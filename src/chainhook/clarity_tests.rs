//! Hand-built serialisations for every Clarity type id, and hostile inputs.

use super::*;
use serde_json::json;

const SENDER_HASH: &str = "444405205b939a0230313fde340e79246068346f";
const SENDER: &str = "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH";

fn dec(hex_str: &str) -> Result<Decoded, ClarityError> {
    decode_hex(hex_str)
}

fn json_of(hex_str: &str) -> Value {
    match dec(hex_str) {
        Ok(d) => d.json,
        Err(e) => panic!("{hex_str}: {e}"),
    }
}

/// The exact text serde_json writes, so exactness beyond 64 bits is visible.
fn text_of(hex_str: &str) -> String {
    serde_json::to_string(&json_of(hex_str)).unwrap()
}

#[test]
fn int_and_uint() {
    assert_eq!(text_of("0x0000000000000000000000000000000005"), "5");
    assert_eq!(text_of("0x00ffffffffffffffffffffffffffffffff"), "-1");
    assert_eq!(text_of("0x0100000000000000000000000011e1a300"), "300000000");
}

#[test]
fn extreme_integers_are_exact() {
    assert_eq!(
        text_of("0x01ffffffffffffffffffffffffffffffff"),
        "340282366920938463463374607431768211455"
    );
    assert_eq!(
        text_of("0x0080000000000000000000000000000000"),
        "-170141183460469231731687303715884105728"
    );
    assert_eq!(
        text_of("0x007fffffffffffffffffffffffffffffff"),
        "170141183460469231731687303715884105727"
    );
    // 2^127 as a uint, and it survives a serialise/parse round trip unchanged.
    let v = json_of("0x0180000000000000000000000000000000");
    let text = serde_json::to_string(&v).unwrap();
    assert_eq!(text, "170141183460469231731687303715884105728");
    let back: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(back, v);
    assert!(v.is_number());
}

#[test]
fn buffers() {
    assert_eq!(json_of("0x0200000003010203"), json!("0x010203"));
    assert_eq!(json_of("0x0200000000"), json!("0x"));
}

#[test]
fn booleans_and_optionals() {
    assert_eq!(json_of("0x03"), json!(true));
    assert_eq!(json_of("0x04"), json!(false));
    assert_eq!(json_of("0x09"), Value::Null);
    assert_eq!(json_of("0x0a03"), json!(true));
    assert_eq!(json_of("0x0a0a09"), Value::Null);
}

#[test]
fn principals_are_c32_and_collected() {
    let d = dec(&format!("0x051a{SENDER_HASH}")).unwrap();
    assert_eq!(d.json, json!(SENDER));
    assert_eq!(d.principals, vec![SENDER.to_string()]);

    let d = dec(&format!("0x061a{SENDER_HASH}03626e73")).unwrap();
    assert_eq!(d.json, json!(format!("{SENDER}.bns")));

    // Mainnet version 22.
    let d = dec("0x05163936cedf1ddb6bc1aa6f243772cab048c586a18b").unwrap();
    assert_eq!(d.json, json!("SPWKDKPZ3QDPQGDADWJ3EWPAP14CB1N1HDQ897W5"));
}

#[test]
fn responses() {
    assert_eq!(
        json_of("0x0703"),
        json!({"result": {"success": true, "value": true}})
    );
    assert_eq!(
        json_of(&format!("0x0801{}07de", "0".repeat(28))),
        json!({"result": {"success": false, "value": 2014}})
    );
}

#[test]
fn lists_tuples_and_strings() {
    assert_eq!(json_of("0x0b000000020304"), json!([true, false]));
    assert_eq!(json_of("0x0b00000000"), json!([]));
    assert_eq!(
        json_of("0x0c00000002016103016204"),
        json!({"a": true, "b": false})
    );
    assert_eq!(json_of("0x0d000000026869"), json!("hi"));
    assert_eq!(json_of("0x0d00000000"), json!(""));
    assert_eq!(json_of("0x0e00000004f09f8cbe"), json!("\u{1F33E}"));
}

#[test]
fn nested_values() {
    // (some (ok (tuple (who tx-sender) (xs (list u1 none)))))
    let hex_str = format!(
        "0x0a07{}{}{}{}",
        "0c00000002",
        format_args!("0377686f051a{SENDER_HASH}"),
        "0278730b00000002",
        "010000000000000000000000000000000109"
    );
    let d = dec(&hex_str).unwrap();
    assert_eq!(
        d.json,
        json!({"result": {"success": true, "value": {"who": SENDER, "xs": [1, null]}}})
    );
    assert_eq!(d.principals, vec![SENDER.to_string()]);
}

#[test]
fn fixture_02_print_value() {
    // First print event of fixture 02 (testnet block 100458), decoded by hand:
    // (tuple (attachment (tuple (attachment-index u2843) (hash 0x) (metadata (tuple
    //   (name "find-tx-error") (namespace "btc") (op "name-revoke") (tx-sender ST1248…))))))
    let hex_str = "0x0c000000010a6174746163686d656e740c00000003106174746163686d656e742d696e6465780100000000000000000000000000000b1b04686173680200000000086d657461646174610c00000004046e616d65020000000d66696e642d74782d6572726f72096e616d6573706163650200000003627463026f700d0000000b6e616d652d7265766f6b650974782d73656e646572051a444405205b939a0230313fde340e79246068346f";
    let d = dec(hex_str).unwrap();
    assert_eq!(
        d.json,
        json!({"attachment": {
            "attachment-index": 2843,
            "hash": "0x",
            "metadata": {
                "name": "0x66696e642d74782d6572726f72",
                "namespace": "0x627463",
                "op": "name-revoke",
                "tx-sender": SENDER,
            }
        }})
    );
    assert_eq!(d.principals, vec![SENDER.to_string()]);
}

#[test]
fn truncated_input_is_an_error() {
    for h in [
        "0x",
        "0x00",
        "0x01ffff",
        "0x02000000050102",
        "0x051a4444",
        "0x061a444405205b939a0230313fde340e79246068346f05626e",
        "0x07",
        "0x0a",
        "0x0b0000000203",
        "0x0c000000010161",
        "0x0c0000000101",
        "0x0d0000000568",
    ] {
        assert!(
            matches!(dec(h), Err(ClarityError::UnexpectedEnd(_))),
            "{h}: {:?}",
            dec(h)
        );
    }
}

#[test]
fn trailing_bytes_are_an_error() {
    assert_eq!(dec("0x0304"), Err(ClarityError::TrailingBytes { len: 1 }));
    assert_eq!(dec("0x0900"), Err(ClarityError::TrailingBytes { len: 1 }));
}

#[test]
fn unknown_type_and_bad_hex() {
    assert_eq!(
        dec("0x0f"),
        Err(ClarityError::UnknownType {
            type_id: 0x0f,
            offset: 0
        })
    );
    assert_eq!(
        dec("0x0b0000000103ff").unwrap_err(),
        ClarityError::TrailingBytes { len: 1 }
    );
    assert_eq!(
        dec("0x0b00000002031f"),
        Err(ClarityError::UnknownType {
            type_id: 0x1f,
            offset: 6
        })
    );
    assert!(matches!(dec("0xzz"), Err(ClarityError::InvalidHex(_))));
    assert!(matches!(dec("0x030"), Err(ClarityError::InvalidHex(_))));
    // Bare hex without the prefix is accepted.
    assert_eq!(json_of("03"), json!(true));
}

#[test]
fn depth_is_bounded() {
    let ok = format!("0x{}09", "0a".repeat(MAX_DEPTH));
    assert_eq!(json_of(&ok), Value::Null);
    let too_deep = format!("0x{}09", "0a".repeat(MAX_DEPTH + 1));
    assert_eq!(dec(&too_deep), Err(ClarityError::TooDeep));
    // Far deeper than any stack could take if recursion were unbounded.
    let hostile = format!("0x{}03", "0b00000001".repeat(200_000));
    assert_eq!(dec(&hostile), Err(ClarityError::TooDeep));
    let hostile = format!("0x{}03", "07".repeat(200_000));
    assert_eq!(dec(&hostile), Err(ClarityError::TooDeep));
}

#[test]
fn huge_lengths_do_not_allocate() {
    for h in [
        "0x0bffffffff03",
        "0x02ffffffff00",
        "0x0cffffffff",
        "0x0dffffffff",
        "0x0effffffff",
    ] {
        assert!(matches!(dec(h), Err(ClarityError::UnexpectedEnd(_))), "{h}");
    }
}

#[test]
fn invalid_strings_and_names() {
    assert_eq!(
        dec("0x0d0000000168ff").unwrap_err(),
        ClarityError::TrailingBytes { len: 1 }
    );
    assert_eq!(dec("0x0d0000000100"), Err(ClarityError::InvalidAscii(5)));
    assert_eq!(dec("0x0d00000001ff"), Err(ClarityError::InvalidAscii(5)));
    assert_eq!(dec("0x0e00000002c328"), Err(ClarityError::InvalidUtf8(5)));
    // Field name starting with a digit.
    assert_eq!(
        dec("0x0c00000001013103"),
        Err(ClarityError::InvalidFieldName(5))
    );
    // Empty field name.
    assert_eq!(
        dec("0x0c00000001000303"),
        Err(ClarityError::InvalidFieldName(5))
    );
    assert_eq!(
        dec("0x0c0000000201610301610400"),
        Err(ClarityError::DuplicateField("a".into()))
    );
    // Single-symbol names Clarity allows.
    assert_eq!(
        json_of("0x0c00000002012b03023c3d04"),
        json!({"+": true, "<=": false})
    );
}

#[test]
fn invalid_principals() {
    // Version 32 cannot be c32-encoded.
    assert!(matches!(
        dec(&format!("0x0520{SENDER_HASH}")),
        Err(ClarityError::InvalidPrincipal { offset: 0, .. })
    ));
    // Contract name starting with a digit.
    assert!(matches!(
        dec(&format!("0x061a{SENDER_HASH}0131")),
        Err(ClarityError::InvalidPrincipal { .. })
    ));
    // Empty contract name.
    assert!(matches!(
        dec(&format!("0x061a{SENDER_HASH}00")),
        Err(ClarityError::InvalidPrincipal { .. })
    ));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A cheap deterministic sweep over short inputs of every leading type id.
    let mut state: u32 = 0x1234_5678;
    for len in 0..40usize {
        for _ in 0..200 {
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                bytes.push(if state & 0x100 == 0 {
                    (state % 16) as u8
                } else {
                    (state >> 8) as u8
                });
            }
            let _ = decode(&bytes);
        }
    }
}
