//! The values editor: set a value at a key path in arbitrary YAML.
//!
//! Input: `key path NUL value NUL yaml text` (so that seeds and crashes are readable).
//!
//! Invariants: nothing panics; a key path prints as text that parses back to it; after a
//! successful edit the text parses, reading the key gives the value, only the value's line
//! differs, and setting the same value again changes nothing.
#![no_main]

use cicd_agents_gitops::values::{KeyPath, ValuesDocument};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let (Some(path), Some(value), Some(yaml)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };

    let Ok(key_path) = KeyPath::parse(path) else {
        return;
    };
    let shown = key_path.to_string();
    match KeyPath::parse(&shown) {
        Ok(again) => assert_eq!(again, key_path, "{path:?} shown as {shown:?}"),
        Err(err) => panic!("{path:?} shown as {shown:?}, which does not parse: {err}"),
    }

    let Ok(mut doc) = ValuesDocument::parse(yaml) else {
        return;
    };
    let _ = doc.get_in(0, &key_path);
    let Ok(change) = doc.set_path(&key_path, value) else {
        assert_eq!(doc.as_str(), yaml, "a failed edit changed the text");
        return;
    };
    let edited = doc.as_str().to_string();
    if !change.changed {
        assert_eq!(edited, yaml);
    }
    let reread = ValuesDocument::parse(edited.as_str())
        .unwrap_or_else(|err| panic!("the edited text does not parse: {err}"));
    assert_eq!(
        reread.get_in(0, &key_path).ok().as_deref(),
        Some(value),
        "edited text:\n{edited}"
    );

    let before: Vec<&str> = yaml.split('\n').collect();
    let after: Vec<&str> = edited.split('\n').collect();
    assert_eq!(before.len(), after.len(), "line count changed:\n{edited}");
    for (i, (a, b)) in before.iter().zip(&after).enumerate() {
        if i + 1 != change.line {
            assert_eq!(
                a,
                b,
                "line {} changed, the edit was on line {}",
                i + 1,
                change.line
            );
        }
    }

    let mut again = reread;
    let second = again
        .set_path(&key_path, value)
        .unwrap_or_else(|err| panic!("setting the same value again failed: {err}"));
    assert!(
        !second.changed,
        "setting the same value again changed the text"
    );
    assert_eq!(again.as_str(), edited);
});
