//! Which names `--backend` and the builder accept: host names (RFC 1123) and SRV names of
//! a TCP service (RFC 2782, `_service._tcp.domain`). The macro checks a table's names with
//! its own twin, which explains what is wrong; its tests include this file and prove the
//! two accept the same names. Needs only `core`.

/// A host name: labels of 1–63 letters, digits and `-` (not at either end), at most 253
/// bytes without the optional trailing dot, and a last label that is not all digits (so
/// `10.0.0.256` is a bad address, not a name).
pub fn host_name_ok(name: &[u8]) -> bool {
    let bare = match name.split_last() {
        Some((b'.', rest)) => rest,
        _ => name,
    };
    if bare.is_empty() || bare.len() > 253 {
        return false;
    }
    let mut last_numeric = false;
    for label in bare.split(|&b| b == b'.') {
        if !label_ok(label, 63) {
            return false;
        }
        last_numeric = label.iter().all(u8::is_ascii_digit);
    }
    !last_numeric
}

/// 1 to `max` letters, digits and `-`, not starting or ending with `-`.
fn label_ok(label: &[u8], max: usize) -> bool {
    (1..=max).contains(&label.len())
        && label
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && label.first() != Some(&b'-')
        && label.last() != Some(&b'-')
}

/// An SRV name of a TCP service: `_` and a service label of 1–15 letters, digits and `-`
/// (not at either end), then `._tcp.` and a host name.
pub fn srv_name_ok(name: &[u8]) -> bool {
    let Some(rest) = name.strip_prefix(b"_") else {
        return false;
    };
    let Some(dot) = rest.iter().position(|&b| b == b'.') else {
        return false;
    };
    let (service, after) = rest.split_at(dot);
    match after.strip_prefix(b"._tcp.") {
        Some(domain) => label_ok(service, 15) && host_name_ok(domain),
        None => false,
    }
}
