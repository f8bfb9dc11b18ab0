use super::*;

#[test]
fn keygen_sizes_keys_like_chronyc() {
    assert_eq!(keygen_params(&[]).unwrap(), (1, "SHA1".into(), 20));
    assert_eq!(keygen_params(&["9", "MD5", "64"]).unwrap().2, 10);
    assert_eq!(keygen_params(&["2", "SHA1", "81"]).unwrap().2, 11);
    assert_eq!(keygen_params(&["2", "SHA1", "5000"]).unwrap().2, 512);
    assert_eq!(keygen_params(&["2", "AES256", "64"]).unwrap().2, 32);
    assert_eq!(
        keygen_params(&["2", "sha256"]).unwrap_err().message(),
        "Unknown hash function or cipher sha256"
    );
    assert_eq!(
        keygen_params(&["x"]).unwrap_err().message(),
        "Invalid syntax for keygen command"
    );
}

#[test]
fn settime_rejects_years_whose_seconds_would_overflow() {
    let now = 1_795_316_483;
    for args in [
        &["9223372036854775807-01-01", "00:00"][..],
        &["-9223372036854775808-03-01", "00:00"],
        &["Jan", "1,", "9223372036854775807", "00:00"],
        &["Mar", "1,", "-9223372036854775808", "00:00"],
        &["1000001-01-01", "00:00"],
    ] {
        assert_eq!(parse_settime(args, now), None, "{args:?}");
    }
    // Before 1970 there is no Unix second to send; far future years still parse.
    assert_eq!(parse_settime(&["1969-12-31", "23:59:59"], now), None);
    assert_eq!(
        parse_settime(&["1000000-01-01", "00:00"], now),
        Some(31_494_784_780_800)
    );
}

#[test]
fn settime_formats_read_as_utc() {
    let now = 1_795_317_650; // 2026-11-22 03:20:50
    assert_eq!(parse_settime(&["03:20:50"], now), Some(now));
    assert_eq!(parse_settime(&["03:20"], now), Some(now - 50));
    assert_eq!(parse_settime(&["2026-11-22", "03:20:50"], now), Some(now));
    assert_eq!(
        parse_settime(&["Nov", "22,", "2026", "03:20:50"], now),
        Some(now)
    );
    assert_eq!(parse_settime(&["25:00"], now), None);
    assert_eq!(parse_settime(&[], now), None);
}
