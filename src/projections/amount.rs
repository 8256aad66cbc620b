//! Token amounts: signed, exact, any size.
//!
//! Chainhook amounts are decimal strings of Clarity `uint`s (up to 2^128 − 1). A balance
//! *change* is a signed sum of such amounts, so neither `u128` (negative changes) nor
//! `i128` (a sum of two large `u128`s) always holds it. Decision: an `i128` fast path —
//! every real balance fits, and the replay benchmark depends on it — that falls back to
//! an arbitrary-precision integer (`num-bigint`) on overflow, so sums and their undoing are
//! exact in every case. Stored and served as decimal strings.

use num_bigint::BigInt;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amount {
    Small(i128),
    Big(BigInt),
}

impl Default for Amount {
    fn default() -> Self {
        Amount::Small(0)
    }
}

impl Amount {
    pub fn is_zero(&self) -> bool {
        match self {
            Amount::Small(v) => *v == 0,
            Amount::Big(b) => b.sign() == num_bigint::Sign::NoSign,
        }
    }

    /// `self += sign * other`, exactly.
    pub fn add_signed(&mut self, other: &Amount, negate: bool) {
        if let (Amount::Small(a), Amount::Small(b)) = (&*self, other) {
            let r = if negate {
                a.checked_sub(*b)
            } else {
                a.checked_add(*b)
            };
            if let Some(r) = r {
                *self = Amount::Small(r);
                return;
            }
        }
        let b = other.to_big();
        let sum = if negate {
            self.to_big() - b
        } else {
            self.to_big() + b
        };
        *self = Amount::from_big(sum);
    }

    fn to_big(&self) -> BigInt {
        match self {
            Amount::Small(v) => BigInt::from(*v),
            Amount::Big(b) => b.clone(),
        }
    }

    /// The canonical form: `Small` whenever the value fits, so equal values compare equal.
    fn from_big(b: BigInt) -> Amount {
        match i128::try_from(&b) {
            Ok(v) => Amount::Small(v),
            Err(_) => Amount::Big(b),
        }
    }
}

impl FromStr for Amount {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(v) = s.parse::<i128>() {
            return Ok(Amount::Small(v));
        }
        BigInt::from_str(s)
            .map(Amount::from_big)
            .map_err(|e| format!("{s:?} is not an amount: {e}"))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amount::Small(v) => write!(f, "{v}"),
            Amount::Big(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_past_i128_and_back_exactly() {
        let max = Amount::from_str(&u128::MAX.to_string()).expect("u128::MAX parses");
        let mut a = Amount::default();
        a.add_signed(&max, false);
        a.add_signed(&max, false);
        assert_eq!(a.to_string(), "680564733841876926926749214863536422910");
        a.add_signed(&max, true);
        a.add_signed(&max, true);
        assert!(a.is_zero());
        assert_eq!(a, Amount::Small(0));
        a.add_signed(&Amount::Small(5), true);
        assert_eq!(a.to_string(), "-5");
    }
}
