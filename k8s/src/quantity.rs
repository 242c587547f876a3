//! Kubernetes resource quantities (`10Gi`, `500m`, `1e3`), parsed with the API server's grammar
//! (`k8s.io/apimachinery/pkg/api/resource`):
//!
//! ```text
//! quantity      ::= signedNumber suffix
//! signedNumber  ::= number | sign number
//! number        ::= digits | digits "." digits | digits "." | "." digits
//! suffix        ::= binarySI | decimalExponent | decimalSI
//! binarySI      ::= Ki | Mi | Gi | Ti | Pi | Ei
//! decimalSI     ::= m | "" | k | M | G | T | P | E
//! decimalExponent ::= ("e" | "E") signedNumber      (an integer exponent)
//! ```

use std::fmt;
use std::str::FromStr;

use super::names::InvalidValue;

/// A valid Kubernetes quantity, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Quantity {
    text: String,
    positive: bool,
}

fn digits(text: &str) -> usize {
    text.bytes().take_while(u8::is_ascii_digit).count()
}

impl Quantity {
    /// Parses `text` with the quantity grammar.
    pub fn parse(text: &str) -> Result<Self, InvalidValue> {
        let invalid = |reason: &str| InvalidValue {
            value: text.to_string(),
            what: "Kubernetes quantity",
            reason: format!("{reason} (e.g. 10Gi, 500m, 1.5G, 1e3)"),
        };
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let whole = digits(rest);
        let mut number_end = whole;
        let mut fraction = 0;
        if rest[whole..].starts_with('.') {
            fraction = digits(&rest[whole + 1..]);
            number_end = whole + 1 + fraction;
        }
        if whole == 0 && fraction == 0 {
            return Err(invalid("it does not start with a number"));
        }
        let number = &rest[..number_end];
        let suffix = &rest[number_end..];
        let suffix_ok = match suffix {
            "" | "m" | "k" | "M" | "G" | "T" | "P" | "E" => true,
            "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => true,
            _ => suffix.strip_prefix(['e', 'E']).is_some_and(|exp| {
                let exp = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                !exp.is_empty() && digits(exp) == exp.len()
            }),
        };
        if !suffix_ok {
            return Err(invalid(&format!(
                "{suffix:?} is not a unit suffix or exponent"
            )));
        }
        let nonzero = number.bytes().any(|b| matches!(b, b'1'..=b'9'));
        Ok(Quantity {
            text: text.to_string(),
            positive: nonzero && !negative,
        })
    }

    /// Parses `text` and refuses zero and negative quantities (sizes, limits).
    pub fn parse_positive(text: &str) -> Result<Self, InvalidValue> {
        let quantity = Self::parse(text)?;
        if quantity.positive {
            Ok(quantity)
        } else {
            Err(InvalidValue {
                value: text.to_string(),
                what: "size",
                reason: "it must be greater than zero".into(),
            })
        }
    }

    /// Whether the quantity is greater than zero.
    pub fn is_positive(&self) -> bool {
        self.positive
    }

    /// The quantity as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Quantity {
    type Err = InvalidValue;
    fn from_str(text: &str) -> Result<Self, InvalidValue> {
        Self::parse(text)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_servers_grammar() {
        for ok in [
            "10Gi", "500m", "1", "1.5G", "1e3", "1E-2", "+2Ki", ".5", "5.", "0", "-1", "12e+6",
            "1Ei",
        ] {
            assert!(Quantity::parse(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "", "ten", "1.2.3Gi", "Gi", "1 Gi", "1gi", "1KI", "1e", "1e1.5", "1Gib", "--1", ".",
            "1e3Gi",
        ] {
            assert!(Quantity::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_must_be_positive() {
        assert!(Quantity::parse_positive("10Gi").is_ok());
        assert!(Quantity::parse_positive("1e3").is_ok());
        for bad in ["0", "0Gi", "0.0", "-1Gi", "0e3"] {
            assert!(Quantity::parse_positive(bad).is_err(), "{bad:?}");
        }
    }
}
