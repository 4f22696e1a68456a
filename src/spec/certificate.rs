//! Certificates from the spec: read PEM with x509-parser, refuse what must never be deployed
//! (private keys, garbage, expired certificates) and warn about what will hurt soon (expiry within
//! 30 days, a leaf whose SANs do not cover the host it is declared for).

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

/// Certificates expiring sooner than this are reported.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// What one certificate in a PEM bundle says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    /// DNS names and IP addresses from the Subject Alternative Name extension.
    pub sans: Vec<String>,
    /// Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
    /// SHA-256 of the DER encoding, colon-separated upper-case hex.
    pub fingerprint: String,
    pub is_ca: bool,
}

/// Reads every PEM block of `text`. A private key anywhere, a block that is not a certificate, or a
/// text with no PEM certificate at all (DER, garbage) is an error.
pub fn inspect(text: &str) -> Result<Vec<CertInfo>, String> {
    // Checked on the text itself too, so that a key is refused even if the PEM is malformed.
    if text.contains("PRIVATE KEY-----") {
        return Err("contains a private key; private keys never go into a ConfigMap (give only the certificate)".into());
    }
    let mut out = Vec::new();
    for (i, block) in Pem::iter_from_buffer(text.as_bytes()).enumerate() {
        // x509-parser's errors are Rust debug text (`NomError(Eof)`); say what is wrong instead.
        let pem = block.map_err(|_| {
            format!(
                "PEM block {} is malformed (not base64 between BEGIN and END lines, or cut short)",
                i + 1
            )
        })?;
        if pem.label != "CERTIFICATE" {
            return Err(format!(
                "PEM block {} is a {:?}, not a CERTIFICATE",
                i + 1,
                pem.label
            ));
        }
        let cert = pem
            .parse_x509()
            .map_err(|_| {
                format!(
                    "PEM block {} is not a valid X.509 certificate (its content does not decode as one)",
                    i + 1
                )
            })?;
        let sans = match cert.subject_alternative_name() {
            Ok(Some(ext)) => ext
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_string()),
                    GeneralName::IPAddress(ip) => ip_to_string(ip),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        let is_ca = matches!(cert.basic_constraints(), Ok(Some(bc)) if bc.value.ca);
        out.push(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            fingerprint: Sha256::digest(&pem.contents)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
            is_ca,
        });
    }
    if out.is_empty() {
        return Err("no PEM certificate found (DER or not a certificate? convert with `openssl x509 -inform der -outform pem`)".into());
    }
    Ok(out)
}

/// Errors and warnings for a bundle declared for `host` (`check_san`: only for gitlab/registry
/// hosts, not for a CA bundle's name).
pub fn assess(
    infos: &[CertInfo],
    host: &str,
    check_san: bool,
    now: i64,
) -> (Vec<String>, Vec<String>) {
    let (mut errors, mut warnings) = (Vec::new(), Vec::new());
    for (i, c) in infos.iter().enumerate() {
        let which = if infos.len() > 1 {
            format!("certificate {} ({})", i + 1, c.subject)
        } else {
            format!("certificate {}", c.subject)
        };
        if c.not_after < now {
            errors.push(format!("{which} expired on {}", date(c.not_after)));
        } else if c.not_after < now + EXPIRY_WARNING_DAYS * 86_400 {
            warnings.push(format!(
                "{which} expires on {}, in {} day(s)",
                date(c.not_after),
                (c.not_after - now) / 86_400
            ));
        }
        if c.not_before > now {
            warnings.push(format!(
                "{which} is not valid before {}",
                date(c.not_before)
            ));
        }
    }
    // The first certificate of a bundle is the leaf when it is not a CA.
    if check_san
        && let Some(leaf) = infos.first().filter(|c| !c.is_ca)
        && !leaf.sans.iter().any(|san| san_matches(san, host))
    {
        warnings.push(format!(
            "leaf certificate {} does not cover {host:?} (SANs: {})",
            leaf.subject,
            if leaf.sans.is_empty() {
                "none".to_owned()
            } else {
                leaf.sans.join(", ")
            }
        ));
    }
    (errors, warnings)
}

/// DNS name matching with a single left-most wildcard label, case-insensitive.
pub fn san_matches(san: &str, host: &str) -> bool {
    let (san, host) = (san.to_ascii_lowercase(), host.to_ascii_lowercase());
    if let Some(rest) = san.strip_prefix("*.") {
        return host
            .split_once('.')
            .is_some_and(|(first, tail)| !first.is_empty() && tail == rest);
    }
    san == host
}

fn ip_to_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

/// `YYYY-MM-DD` (UTC) for unix seconds (civil-from-days, H. Hinnant).
pub fn date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_795_000_000), "2026-11-18");
    }

    #[test]
    fn wildcards() {
        assert!(san_matches("*.example.com", "gitlab.example.com"));
        assert!(!san_matches("*.example.com", "a.b.example.com"));
        assert!(san_matches("GitLab.example.com", "gitlab.example.com"));
    }

    #[test]
    fn refuses_keys_and_garbage() {
        assert!(
            inspect("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
                .unwrap_err()
                .contains("private key")
        );
        assert!(
            inspect("\u{30}\u{82}garbage")
                .unwrap_err()
                .contains("no PEM certificate")
        );
    }
}
