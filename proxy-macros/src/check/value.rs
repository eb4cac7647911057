//! Option values: the shapes several rules share (a block of known keys, a duration, a
//! bounded number, a string, a boolean, an RFC 9110 token).

use crate::ast::{Opt, Value};
use crate::errors::Errors;
use crate::hints::hint_or_list;
use syn::LitStr;

// Rule: a block of options has known keys, each given once. `{ conect: 1s }` is an
// unknown key (with a hint), `{ read: 1s, read: 2s }` a repeated one. Returns the options
// to read.
pub fn unique_opts<'a>(
    errs: &mut Errors,
    opts: impl IntoIterator<Item = &'a Opt>,
    known: &[&str],
    what: &str,
) -> Vec<&'a Opt> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for o in opts {
        let k = o.key.to_string();
        if !known.contains(&k.as_str()) {
            errs.push(
                o.key.span(),
                format!("unknown {what} `{k}`{}", hint_or_list(&k, known)),
            );
        } else if seen.contains(&k) {
            errs.push(o.key.span(), format!("`{k}` is given twice"));
        } else {
            seen.push(k);
            out.push(o);
        }
    }
    out
}

// Rule: among a rule's actions, the ones in `once` are given once: `{ strip_prefix: "/a",
// strip_prefix: "/b" }` is an error at the second. Returns the actions to read.
pub fn unique_names<'a>(
    errs: &mut Errors,
    actions: impl IntoIterator<Item = &'a crate::ast::Action>,
    once: &[&str],
) -> Vec<&'a crate::ast::Action> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for a in actions {
        let k = a.name().to_string();
        if once.contains(&k.as_str()) {
            if seen.contains(&k) {
                errs.push(a.name().span(), format!("`{k}` is given twice"));
                continue;
            }
            seen.push(k);
        }
        out.push(a);
    }
    out
}

// Rule: a size has a unit: `512b`, `64kb`, `1mb`, `2gb` (1 kb = 1024 bytes), at most 1 tb,
// or is `0`; `1024` and `1mib` are errors. Returns bytes.
pub fn size(errs: &mut Errors, v: &Value, what: &str) -> Option<u64> {
    let Value::Int(lit) = v else {
        errs.push(
            v.span(),
            format!("expected a size for {what}, e.g. `1mb` or `64kb`"),
        );
        return None;
    };
    let unit: u64 = match lit.suffix() {
        "b" => 1,
        "kb" => 1 << 10,
        "mb" => 1 << 20,
        "gb" => 1 << 30,
        // `0b` is a binary literal to Rust: zero bytes is written `0`.
        "" if lit.base10_digits() == "0" => return Some(0),
        "" => {
            errs.push(
                lit.span(),
                "a size needs a unit, e.g. `512b`, `64kb`, `1mb` or `2gb`",
            );
            return None;
        }
        other => {
            errs.push(
                lit.span(),
                format!("unknown size unit `{other}`; use `b`, `kb`, `mb` or `gb`"),
            );
            return None;
        }
    };
    match lit
        .base10_parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
    {
        Some(bytes) if bytes <= 1 << 40 => Some(bytes),
        _ => {
            errs.push(lit.span(), "a size is at most 1024gb");
            None
        }
    }
}

/// Longest duration a table may give: a day, far beyond any timeout or interval.
const MAX_DURATION_MS: u64 = 86_400_000;

// Rule: a duration has a unit and is longer than zero: `500ms`, `5s`, `1m`, `1h`; `5` and
// `0s` are errors. Returns milliseconds.
pub fn duration(errs: &mut Errors, v: &Value, what: &str) -> Option<u64> {
    let Value::Int(lit) = v else {
        errs.push(
            v.span(),
            format!("expected a duration for {what}, e.g. `5s` or `500ms`"),
        );
        return None;
    };
    let n: u64 = match lit.base10_parse() {
        Ok(n) => n,
        Err(_) => {
            errs.push(lit.span(), "expected a whole number with a unit, e.g. `5s`");
            return None;
        }
    };
    let unit_ms: u64 = match lit.suffix() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "" => {
            errs.push(
                lit.span(),
                format!("duration without a unit; write `{n}s` or `{n}ms`"),
            );
            return None;
        }
        other => {
            errs.push(
                lit.span(),
                format!("unknown duration unit `{other}`; use `ms`, `s`, `m` or `h`"),
            );
            return None;
        }
    };
    match n.checked_mul(unit_ms) {
        Some(0) => {
            errs.push(lit.span(), format!("{what} must be longer than zero"));
            None
        }
        Some(ms) if ms <= MAX_DURATION_MS => Some(ms),
        _ => {
            errs.push(lit.span(), format!("{what} must be at most a day (`24h`)"));
            None
        }
    }
}

// Rule: a count is a plain number in its range: `retries: 2`; `retries: 2s` or
// `retries: 9` are errors.
pub fn int_in(errs: &mut Errors, v: &Value, min: u64, max: u64, what: &str) -> Option<u64> {
    let Value::Int(lit) = v else {
        errs.push(v.span(), format!("expected a whole number for {what}"));
        return None;
    };
    if !lit.suffix().is_empty() {
        errs.push(
            lit.span(),
            format!("{what} is a plain number, without a unit"),
        );
        return None;
    }
    match lit.base10_parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            errs.push(
                lit.span(),
                format!("{what} must be between {min} and {max}"),
            );
            None
        }
    }
}

pub fn string(errs: &mut Errors, v: &Value, what: &str) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.value()),
        v => {
            errs.push(v.span(), format!("expected a string for {what}"));
            None
        }
    }
}

pub fn boolean(errs: &mut Errors, v: &Value, what: &str) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(b.value),
        v => {
            errs.push(v.span(), format!("expected `true` or `false` for {what}"));
            None
        }
    }
}

// Rule: header and cookie names are RFC 9110 tokens: `header("x-user")`; `header("x user")`
// and `cookie("")` are errors.
pub fn check_token(errs: &mut Errors, lit: &LitStr, what: &str) -> bool {
    let s = lit.value();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c));
    if !ok {
        errs.push(
            lit.span(),
            format!(
                "`{s}` is not a valid {what}: use letters, digits and `-`/`_`, no spaces or `:`"
            ),
        );
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dur(lit: &str) -> Result<u64, String> {
        let mut errs = Errors::default();
        let v = Value::Int(syn::parse_str(lit).unwrap());
        let got = duration(&mut errs, &v, "`every`");
        errs.finish(got)
            .map(|ms| ms.unwrap_or_default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn durations_have_units_and_bounds() {
        assert_eq!(dur("500ms"), Ok(500));
        assert_eq!(dur("2m"), Ok(120_000));
        assert_eq!(
            dur("5").unwrap_err(),
            "duration without a unit; write `5s` or `5ms`"
        );
        assert_eq!(dur("0s").unwrap_err(), "`every` must be longer than zero");
        // Would overflow a u64 of milliseconds: an error, not a panic.
        assert_eq!(
            dur("18446744073709551615h").unwrap_err(),
            "`every` must be at most a day (`24h`)"
        );
    }
}
