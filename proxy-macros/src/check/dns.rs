//! DNS names in `backends`: host names (RFC 1123) and SRV names (RFC 2782), checked at
//! compile time with messages that say what is wrong. The runtime checks `--backend`
//! names with its own `proxy_runtime::discovery::name`; the tests below include that file
//! and prove both accept the same names.

/// Longest name, without a trailing dot (RFC 1035 §2.3.4: 255 octets on the wire).
const MAX_NAME: usize = 253;
/// Longest label (RFC 1035 §2.3.4).
const MAX_LABEL: usize = 63;
/// Longest SRV service label after its `_` (RFC 6335 §5.1).
const MAX_SERVICE: usize = 15;

/// What is wrong with `name` as a host name, or `None` when it is one. A trailing dot
/// (an absolute name) is allowed; the last label may not be all digits, so a mistyped IPv4
/// address (`10.0.0.256`) is not taken for a name.
pub fn host_name_problem(name: &str) -> Option<String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Some("the host name is empty".to_owned());
    }
    if bare.len() > MAX_NAME {
        return Some(format!(
            "the host name is {} characters long; a DNS name has at most {MAX_NAME}",
            bare.len()
        ));
    }
    for label in bare.split('.') {
        if let Some(p) = label_problem(label) {
            return Some(p);
        }
    }
    let last = bare.rsplit('.').next().unwrap_or(bare);
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!(
            "`{name}` is neither an IP address nor a host name (its last label is a number)"
        ));
    }
    None
}

/// What is wrong with one label of a host name.
fn label_problem(label: &str) -> Option<String> {
    if label.is_empty() {
        return Some(
            "the host name has an empty label (two dots in a row, or a leading dot)".to_owned(),
        );
    }
    if label.len() > MAX_LABEL {
        return Some(format!(
            "the label `{label}` is {} characters long; a label has at most {MAX_LABEL}",
            label.len()
        ));
    }
    if let Some(c) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "`{}` cannot appear in a host name; use letters, digits, `-` and `.`",
            c.escape_debug()
        ));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Some(format!(
            "the label `{label}` starts or ends with `-`, which a host name may not"
        ));
    }
    None
}

/// What is wrong with `name` as the SRV name of an HTTP service, `_service._tcp.domain`,
/// or `None` when it is one.
pub fn srv_name_problem(name: &str) -> Option<String> {
    let mut parts = name.splitn(3, '.');
    let (service, proto, domain) = (parts.next(), parts.next(), parts.next());
    let (Some(service), Some(proto), Some(domain)) = (service, proto, domain) else {
        return Some(format!(
            "`{name}` is not an SRV name; write `_service._tcp.domain`, e.g. `_http._tcp.api.internal`"
        ));
    };
    let Some(label) = service.strip_prefix('_') else {
        return Some(format!(
            "an SRV name starts with `_` and the service, e.g. `_http._tcp.{domain}`"
        ));
    };
    let valid_service = !label.is_empty()
        && label.len() <= MAX_SERVICE
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    if !valid_service {
        return Some(format!(
            "`{service}` is not a service label: `_` and 1 to {MAX_SERVICE} letters, digits or `-`"
        ));
    }
    match proto {
        "_tcp" => {}
        "_udp" => {
            return Some(
                "`_udp` names a UDP service; backends are reached over TCP: use `_tcp`".to_owned(),
            )
        }
        other => {
            return Some(format!(
                "`{other}` is not a protocol label; an HTTP service is `_tcp`"
            ))
        }
    }
    host_name_problem(domain)
}

/// The runtime's checks of `--backend` names, compiled into these tests.
#[cfg(test)]
#[path = "../../../proxy-runtime/src/discovery/name.rs"]
mod runtime_names;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        for ok in [
            "api.internal",
            "a",
            "API-1.example.com.",
            "x--y.test",
            "3com.example",
        ] {
            assert_eq!(host_name_problem(ok), None, "{ok}");
        }
        let long_label = "a".repeat(64);
        let long_name = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(62),
        ]
        .join(".");
        for bad in [
            "",
            ".",
            "api..internal",
            ".api",
            "api_internal",
            "-api.internal",
            "api-.internal",
            "api.internal/x",
            "10.0.0.256",
            "1.2.3",
            long_label.as_str(),
            long_name.as_str(),
            "ä.example",
        ] {
            assert!(host_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn srv_names() {
        assert_eq!(srv_name_problem("_http._tcp.api.internal"), None);
        assert_eq!(srv_name_problem("_grpc-web._tcp.x.example."), None);
        for bad in [
            "_http._udp.api.internal",
            "http._tcp.api.internal",
            "_http.tcp.api.internal",
            "_._tcp.api",
            "_averyveryverylongservice._tcp.api",
            "_http._tcp",
            "_http._tcp.",
            "_http._tcp.bad_name",
            "api.internal",
        ] {
            assert!(srv_name_problem(bad).is_some(), "{bad:?}");
        }
    }

    use super::runtime_names as runtime;

    proptest::proptest! {
        /// The macro and the runtime accept the same host and SRV names.
        #[test]
        fn runtime_agrees(
            name in "[a-zA-Z0-9_.-]{0,12}|_[a-zA-Z-]{0,17}\\._(tcp|TCP|udp|x)\\.[a-z0-9.-]{0,8}|([a-z0-9-]{1,66}\\.){1,5}[a-z0-9-]{0,66}\\.?"
        ) {
            proptest::prop_assert_eq!(host_name_problem(&name).is_none(), runtime::host_name_ok(name.as_bytes()));
            // Both sides lowercase an SRV name before they judge it.
            let lower = name.to_ascii_lowercase();
            proptest::prop_assert_eq!(srv_name_problem(&lower).is_none(), runtime::srv_name_ok(lower.as_bytes()));
        }
    }
}
