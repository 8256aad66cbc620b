//! Stacks principals: c32check addresses (`SP…`, `ST…`) and contract principals (`SP….name`).
//!
//! Chainhook hands us principals in two shapes: as strings (event `sender`/`recipient`,
//! values already decoded by Chainhook) and as bytes inside Clarity-serialised values. Both
//! must end up as the same string, because subscribers match on `affectedAddresses`.

use std::fmt;

/// Length of a principal's hash160.
pub const HASH160_LEN: usize = 20;

/// Longest contract name a Clarity value may carry (its length is a `u8` on the wire, and
/// Clarity caps `ContractName` at 128).
pub const MAX_CONTRACT_NAME_LEN: usize = 128;

/// Why bytes cannot form a principal address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrincipalError {
    #[error("address version {0} is not below 32")]
    InvalidVersion(u8),
    #[error("invalid contract name {0:?}")]
    InvalidContractName(String),
}

/// Encodes a standard principal as Stacks writes it: `S` + c32check(version, hash160).
pub fn encode_address(version: u8, hash160: &[u8; HASH160_LEN]) -> Result<String, PrincipalError> {
    // The c32 crate rejects versions ≥ 32 itself; checking first keeps our error typed.
    if version >= 32 {
        return Err(PrincipalError::InvalidVersion(version));
    }
    c32::encode_check_prefixed(hash160, 'S', version)
        .map_err(|_| PrincipalError::InvalidVersion(version))
}

/// True when `name` is a valid Clarity contract name: `^[a-zA-Z]([a-zA-Z0-9]|[-_])*$`, at
/// most [`MAX_CONTRACT_NAME_LEN`] bytes.
pub fn is_contract_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.split_first() {
        Some((first, rest)) => {
            bytes.len() <= MAX_CONTRACT_NAME_LEN
                && first.is_ascii_alphabetic()
                && rest
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        }
        None => false,
    }
}

/// True when `s` is a c32check-valid Stacks address of a mainnet or testnet version
/// (`SP`, `SM`, `ST`, `SN`) carrying a 20-byte hash, written in canonical form.
///
/// The checksum is verified so that ordinary strings in decoded print values (names,
/// symbols) are not mistaken for addresses.
pub fn is_standard_address(s: &str) -> bool {
    decode_standard_address(s).is_some()
}

/// The version byte and hash160 of a standard address that [`is_standard_address`] accepts;
/// `None` for anything else.
pub fn decode_standard_address(s: &str) -> Option<(u8, [u8; HASH160_LEN])> {
    let rest = s.strip_prefix('S')?;
    if !matches!(rest.as_bytes().first(), Some(b'P' | b'M' | b'T' | b'N')) {
        return None;
    }
    // `c32::decode_check` subtracts the 4-byte checksum from whatever it decoded and would
    // underflow on very short input; decoding the unchecked payload first proves there are
    // exactly hash160 + checksum bytes, which also rules out other hash lengths.
    match c32::decode(&rest[1..]) {
        Ok(payload) if payload.len() == HASH160_LEN + 4 => {}
        _ => return None,
    }
    let (hash, version) = c32::decode_check(rest).ok()?;
    let hash = <[u8; HASH160_LEN]>::try_from(hash.as_slice()).ok()?;
    // Re-encoding rejects non-canonical spellings (lowercase, `O`/`I`/`L` aliases, extra
    // leading zeros) that decode to the same bytes: matching is by string equality.
    encode_address(version, &hash).is_ok_and(|canonical| canonical == s).then_some((version, hash))
}

/// True when `s` is a standard principal (see [`is_standard_address`]) or a contract
/// principal `ADDRESS.contract-name`.
pub fn is_principal(s: &str) -> bool {
    match s.split_once('.') {
        Some((address, name)) => is_standard_address(address) && is_contract_name(name),
        None => is_standard_address(s),
    }
}

/// A principal decoded from Clarity bytes, displayed as its address string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal(String);

impl Principal {
    pub fn standard(version: u8, hash160: &[u8; HASH160_LEN]) -> Result<Self, PrincipalError> {
        encode_address(version, hash160).map(Principal)
    }

    pub fn contract(
        version: u8,
        hash160: &[u8; HASH160_LEN],
        name: &str,
    ) -> Result<Self, PrincipalError> {
        if !is_contract_name(name) {
            return Err(PrincipalError::InvalidContractName(name.to_string()));
        }
        let address = encode_address(version, hash160)?;
        Ok(Principal(format!("{address}.{name}")))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(hex_str: &str) -> [u8; HASH160_LEN] {
        let bytes = hex::decode(hex_str).unwrap();
        bytes.try_into().unwrap()
    }

    #[test]
    fn testnet_sender_of_fixture_02_round_trips() {
        // Fixture 02, first transaction: the print value's `tx-sender` is 0x1a + this hash,
        // and the transaction's `metadata.sender` is the address below.
        let h = hash("444405205b939a0230313fde340e79246068346f");
        assert_eq!(
            encode_address(0x1a, &h).unwrap(),
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH"
        );
        assert!(is_principal("ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH"));
    }

    #[test]
    fn mainnet_version_gives_sp_prefix() {
        // Fixture 03: the `recipient` in arkadiko-dao's print is 0x16 + this hash, minted to
        // the transaction sender.
        let h = hash("3936cedf1ddb6bc1aa6f243772cab048c586a18b");
        assert_eq!(
            encode_address(22, &h).unwrap(),
            "SPWKDKPZ3QDPQGDADWJ3EWPAP14CB1N1HDQ897W5"
        );
    }

    #[test]
    fn zero_hash_boot_address() {
        let h = [0u8; HASH160_LEN];
        assert_eq!(
            encode_address(26, &h).unwrap(),
            "ST000000000000000000002AMW42H"
        );
        assert_eq!(
            encode_address(22, &h).unwrap(),
            "SP000000000000000000002Q6VF78"
        );
        assert!(is_principal("ST000000000000000000002AMW42H.bns"));
    }

    #[test]
    fn decoding_gives_the_version_and_hash_back() {
        let h = hash("444405205b939a0230313fde340e79246068346f");
        assert_eq!(decode_standard_address("ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH"), Some((26, h)));
        let mainnet = encode_address(22, &h).unwrap();
        assert_eq!(decode_standard_address(&mainnet), Some((22, h)));
        assert_eq!(decode_standard_address("ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH.c"), None);
    }

    #[test]
    fn version_32_is_rejected() {
        assert_eq!(
            encode_address(32, &[0; 20]),
            Err(PrincipalError::InvalidVersion(32))
        );
    }

    #[test]
    fn contract_principal_checks_name() {
        let h = hash("444405205b939a0230313fde340e79246068346f");
        assert_eq!(
            Principal::contract(0x1a, &h, "my-contract_v2")
                .unwrap()
                .to_string(),
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH.my-contract_v2"
        );
        assert!(Principal::contract(0x1a, &h, "1bad").is_err());
        assert!(Principal::contract(0x1a, &h, "").is_err());
        assert!(Principal::contract(0x1a, &h, "has space").is_err());
    }

    #[test]
    fn is_principal_accepts_real_addresses() {
        for s in [
            "SPWKDKPZ3QDPQGDADWJ3EWPAP14CB1N1HDQ897W5",
            "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.arkadiko-stx-reserve-v1-1",
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM",
            "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5",
            "SN3Z4MMRJ29FVZB38FGYPE94N1D8ZGF55R7YWH00A",
        ] {
            assert!(is_principal(s), "{s}");
        }
    }

    #[test]
    fn is_principal_rejects_lookalikes() {
        for s in [
            "",
            "S",
            "SP",
            "SP0",
            "SP00000",
            "ST",
            "hello",
            "asset-id",
            "abcsome-valueabc",
            // One character changed: checksum fails.
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EJ",
            // Lowercase decodes to the same bytes but is not the canonical spelling.
            "st1248190be9sm0hg64zxwd0ef4j60t1mdwqwz3eh",
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3Eh",
            // Wrong version letter for a principal.
            "SA1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH",
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH.",
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH.9x",
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH.a.b",
            "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH::token",
            "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token::usda",
            "S\u{e9}\u{e9}",
        ] {
            assert!(!is_principal(s), "{s:?}");
        }
    }

    #[test]
    fn short_and_garbage_strings_never_panic() {
        let alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
        let mut s = String::from("SP");
        for i in 0..60 {
            let c = alphabet.as_bytes()[(i * 7) % alphabet.len()] as char;
            s.push(c);
            let _ = is_principal(&s);
            let _ = is_principal(&s.replace('P', "T"));
        }
        // Pseudo-random strings over the c32 alphabet (plus aliases) of every short length.
        let chars = b"0123456789ABCDEFGHJKMNPQRSTVWXYZOILoil";
        let mut state: u32 = 0x9e37_79b9;
        for len in 0..48 {
            for _ in 0..300 {
                let mut s = String::from(["SP", "ST", "SM", "SN"][(state % 4) as usize]);
                for _ in 0..len {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    s.push(chars[(state as usize) % chars.len()] as char);
                }
                let _ = is_principal(&s);
            }
        }
        let mut zeros = String::from("ST");
        for _ in 0..45 {
            zeros.push('0');
            assert!(!is_principal(&zeros));
        }
    }
}
