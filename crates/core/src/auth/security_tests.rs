//! Security catalogue case 17 (constant-time MAC check, compare CVE-2016-1550): the only
//! comparison of a received digest with the expected one is `subtle::ConstantTimeEq`, and
//! every path that accepts a keyed packet (the server's request check, the client and peer
//! association's reply check) goes through [`Key::verify`]. The catalogue asks for "a unit
//! test asserting that the API is used": these read the source of the modules concerned, so
//! a change that compares digests with `==`, or a new verification path beside
//! `Key::verify`, fails here. A timing smoke test belongs in the benchmarks, not in a unit
//! test (no timed tests). Also case 32's zeroize bullet, as a compile-time check.

use super::*;

const AUTH_RS: &str = include_str!("../auth.rs");
const SERVER_RS: &str = include_str!("../server.rs");
const ASSOCIATION_AUTH_RS: &str = include_str!("../association/auth.rs");

/// The text of the function `fn NAME(` in `source`, up to the first line that closes a
/// block at the indentation of its signature.
fn function_body<'a>(source: &'a str, name: &str) -> &'a str {
    let start = source
        .find(&format!("fn {name}("))
        .unwrap_or_else(|| panic!("no fn {name} in the source"));
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    let indent = &source[line_start..start]
        [..source[line_start..start].len() - source[line_start..start].trim_start().len()];
    let close = format!("\n{indent}}}\n");
    let end = source[start..]
        .find(&close)
        .map_or(source.len(), |i| start + i + close.len());
    &source[start..end]
}

/// Code lines only (comments dropped), so a comment mentioning `==` does not count.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn case17_key_verify_compares_digests_with_constant_time_eq_only() {
    let body = code(function_body(AUTH_RS, "verify"));
    assert!(
        body.contains(".ct_eq("),
        "verify no longer uses ct_eq:\n{body}"
    );
    // The one `==` allowed compares lengths, which are public (the wire length of the type).
    let equalities: Vec<&str> = body.lines().filter(|l| l.contains("==")).collect();
    assert!(
        equalities
            .iter()
            .all(|l| l.contains(".len() == len") && l.matches("==").count() == 1),
        "verify compares something other than lengths with ==:\n{body}"
    );
    assert!(
        !body.contains("!=") && !body.contains(".eq(") && !body.contains("starts_with"),
        "verify has a short-circuiting comparison:\n{body}"
    );
}

#[test]
fn case17_every_keyed_packet_check_goes_through_key_verify() {
    for (name, source) in [
        ("server.rs", SERVER_RS),
        ("association/auth.rs", ASSOCIATION_AUTH_RS),
    ] {
        let text = code(source);
        assert!(
            text.contains(".verify("),
            "{name} no longer checks MACs with Key::verify"
        );
        // Nobody recomputes a digest to compare it themselves: `sign` is the server's reply
        // path only (it writes, never compares), and no digest is compared with `==`.
        for l in text.lines() {
            let l = l.trim();
            assert!(
                !(l.contains("digest") && (l.contains(" == ") || l.contains(" != "))),
                "{name} compares a digest directly: {l}"
            );
        }
    }
}

#[test]
fn case17_verify_rejects_equal_length_digests_differing_anywhere() {
    // The behaviour the constant-time path must keep: any single differing octet, first or
    // last, and any length other than the wire length, fail; the right digest passes.
    let key = Key::new(1, KeyType::Sha1, b"0123456789abcdef0123".to_vec()).unwrap();
    let data = [0x23u8; 48];
    let mut good = [0u8; MAX_DIGEST_LEN];
    let len = key.sign(&data, 4, &mut good);
    assert!(key.verify(&data, 4, &good[..len]));
    for i in 0..len {
        let mut bad = good;
        bad[i] ^= 0x80;
        assert!(!key.verify(&data, 4, &bad[..len]), "octet {i}");
    }
    assert!(!key.verify(&data, 4, &good[..len - 4]));
    assert!(!key.verify(&data, 4, &good[..len + 4]));
}

/// Catalogue case 32, the zeroize bullet (ntpd-rs NTP-024): every type holding key material
/// wipes it on drop. Checked at compile time: removing `ZeroizeOnDrop` or `Zeroizing` from any
/// of them stops this test from building.
#[test]
fn case32_key_material_types_zeroize_on_drop() {
    fn wipes_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    wipes_on_drop::<crate::nts::SessionKeys>();
    // (The server's cookie keys are a list of `nts::cookie::ServerKey`, private there and
    // derived `ZeroizeOnDrop` itself.)
    wipes_on_drop::<Zeroizing<Vec<u8>>>();
    // Symmetric key material.
    let key = Key::new(1, KeyType::Md5, b"0123456789".to_vec()).unwrap();
    let _: &Zeroizing<Vec<u8>> = &key.material;
    // Cookies on their way from NTS-KE and NTS-NTP into the jar, and out of it.
    let outcome_cookies = |o: &crate::nts_client::NtsKeOutcome| -> usize {
        let c: &Vec<Zeroizing<Vec<u8>>> = &o.cookies;
        c.len()
    };
    let _ = outcome_cookies;
    let mut jar = crate::nts_client::CookieJar::default();
    let taken: Option<Zeroizing<Vec<u8>>> = jar.take();
    assert!(taken.is_none());
}
