//! Certificates from the spec: read PEM with x509-parser, refuse what must never be deployed
//! (private keys, garbage, expired certificates) and warn about what will hurt soon (expiry within
//! 30 days, a leaf whose SANs do not cover the host it is declared for).
//!
//! What reaches a generated ConfigMap is never the text as given: the certificates are parsed to
//! DER and written out again ([`normalize`]), so anything else a file holds stays behind.

use sha2::{Digest, Sha256};
use x509_parser::error::PEMError;
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

/// The certificates of a PEM text, each as the DER bytes of one parsed X.509 certificate, in
/// order. Text, comments and blank lines around and between the blocks are ignored (and so never
/// reach the output, see [`to_pem`]). A private key anywhere, a PEM block that is not a
/// certificate, a block that does not parse, or a text without any certificate (DER, garbage) is
/// an error. Messages describe what was found by kind and block number, never by quoting the text:
/// the file may be someone else's, and its content must not come back in a message.
pub fn certificates(text: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    // Checked on the bytes too, so that a key is refused even if its PEM is malformed.
    if memchr::memmem::find(text, b"PRIVATE KEY-----").is_some() {
        return Err(PRIVATE_KEY.into());
    }
    let mut out = Vec::new();
    for (i, block) in Pem::iter_from_buffer(text).enumerate() {
        let n = i + 1;
        let pem = block.map_err(|e| match e {
            PEMError::Base64DecodeError => format!("PEM block {n} is not valid base64"),
            PEMError::IncompletePEM => format!("PEM block {n} has no END line"),
            PEMError::InvalidHeader => format!("PEM block {n} has a malformed BEGIN line"),
            _ => format!("PEM block {n} cannot be read"),
        })?;
        if pem.label != "CERTIFICATE" {
            return Err(format!(
                "PEM block {n} is {}, not a CERTIFICATE",
                describe_label(&pem.label)
            ));
        }
        match x509_parser::parse_x509_certificate(&pem.contents) {
            Ok(([], _)) => out.push(pem.contents),
            Ok(_) => {
                return Err(format!(
                    "PEM block {n} has bytes after its X.509 certificate"
                ));
            }
            Err(_) => return Err(format!("PEM block {n} is not a valid X.509 certificate")),
        }
    }
    if out.is_empty() {
        return Err("no PEM certificate found (DER or not a certificate? convert with `openssl x509 -inform der -outform pem`)".into());
    }
    Ok(out)
}

const PRIVATE_KEY: &str =
    "contains a private key; private keys never go into a ConfigMap (give only the certificate)";

/// What a non-certificate PEM block is, in our words: only labels we know are named (they are
/// our constants, not the file's text), anything else is "another PEM block".
fn describe_label(label: &str) -> &'static str {
    match label {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => "a public key",
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => "a certificate request",
        "X509 CRL" => "a certificate revocation list",
        "TRUSTED CERTIFICATE" => "an OpenSSL TRUSTED CERTIFICATE (give the plain CERTIFICATE form)",
        "PKCS7" | "CMS" => "a PKCS#7/CMS bundle (convert with `openssl pkcs7 -print_certs`)",
        _ => "another PEM block",
    }
}

/// PEM text for DER certificates: one `CERTIFICATE` block each, base64 in 64-character lines,
/// `\n` line ends. This is the only form in which certificates reach the output.
pub fn to_pem(ders: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for der in ders {
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = data_encoding::BASE64.encode(der);
        for line in b64.as_bytes().chunks(64) {
            // Base64 is ASCII, so every chunk is valid UTF-8.
            out.push_str(std::str::from_utf8(line).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
    out
}

/// The certificates of a PEM text, re-encoded by [`to_pem`].
pub fn normalize(text: &[u8]) -> Result<String, String> {
    certificates(text).map(|ders| to_pem(&ders))
}

/// What every certificate of a PEM text says about itself (see [`certificates`] for the errors).
pub fn inspect(text: &str) -> Result<Vec<CertInfo>, String> {
    let mut out = Vec::new();
    for der in certificates(text.as_bytes())? {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
            continue; // parsed once already by `certificates`
        };
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
            fingerprint: Sha256::digest(&der)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<Vec<_>>()
                .join(":"),
            is_ca,
        });
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

    fn self_signed() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::new(vec!["a.example.com".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .pem()
    }

    #[test]
    fn re_encodes_only_the_certificates() {
        let pem = self_signed();
        let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        // Text around, CRLF, odd line lengths, two blocks.
        let messy = format!(
            "PASSWORD=x\r\n-----BEGIN CERTIFICATE-----\r\n{}\r\n{}\r\n-----END CERTIFICATE-----\r\n# tail\n{pem}",
            &b64[..7],
            &b64[7..]
        );
        let normalized = normalize(messy.as_bytes()).unwrap();
        assert_eq!(normalized, format!("{pem}{pem}"));
        assert!(!normalized.contains("PASSWORD"));
        for line in normalized.lines() {
            assert!(line.len() <= 64, "{line}");
        }
        // Idempotent.
        assert_eq!(normalize(normalized.as_bytes()).unwrap(), normalized);
    }

    #[test]
    fn describes_other_blocks_by_kind_without_quoting_them() {
        let pem = self_signed();
        for (label, kind) in [
            ("PUBLIC KEY", "a public key"),
            ("CERTIFICATE REQUEST", "a certificate request"),
            ("MY SECRET hunter2", "another PEM block"),
        ] {
            let text = format!("{pem}-----BEGIN {label}-----\nAAAA\n-----END {label}-----\n");
            let err = certificates(text.as_bytes()).unwrap_err();
            assert_eq!(err, format!("PEM block 2 is {kind}, not a CERTIFICATE"));
        }
        let bad = "-----BEGIN CERTIFICATE-----\nc2VjcmV0IGhlcmU=\n-----END CERTIFICATE-----\n";
        assert_eq!(
            certificates(bad.as_bytes()).unwrap_err(),
            "PEM block 1 is not a valid X.509 certificate"
        );
        let unterminated = "-----BEGIN CERTIFICATE-----\nAAAA\n";
        assert_eq!(
            certificates(unterminated.as_bytes()).unwrap_err(),
            "PEM block 1 has no END line"
        );
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
