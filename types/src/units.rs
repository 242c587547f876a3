//! Numbers with a unit as people write them (`24h`, `1.5s`, `10GB`): the one split of a
//! decimal number from the unit after it, for the duration and size parsers.

/// Splits `text` (trimmed) into its leading decimal number (digits and dots) and the rest,
/// the unit, untrimmed; `None` when the leading part is not a number.
///
/// ```
/// use cicd_agents_types::units::number_and_unit;
///
/// assert_eq!(number_and_unit(" 1.5GiB"), Some((1.5, "GiB")));
/// assert_eq!(number_and_unit("90"), Some((90.0, "")));
/// assert_eq!(number_and_unit("lots"), None);
/// ```
pub fn number_and_unit(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    number.parse().ok().map(|value| (value, unit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_number_and_unit() {
        assert_eq!(number_and_unit("250ms"), Some((250.0, "ms")));
        assert_eq!(number_and_unit("10 GB"), Some((10.0, " GB")));
        assert_eq!(number_and_unit(".5s"), Some((0.5, "s")));
        assert_eq!(number_and_unit(""), None);
        assert_eq!(number_and_unit("1.2.3s"), None);
        assert_eq!(number_and_unit("-1s"), None);
    }
}
