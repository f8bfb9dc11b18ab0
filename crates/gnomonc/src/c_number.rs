//! Numbers in command arguments, read the way chronyc reads them: with C's `atoi()` and
//! `sscanf("%d")`/`sscanf("%lf")`, which take the longest numeric prefix of a word and ignore
//! what follows (`maxpoll 1.2.3.4 5x` sets 5), so gnomonc accepts and refuses the same
//! command lines (chronyc(1) documents the commands, not the parsing; measured against
//! chronyc 4.3).

/// C `atoi`: leading blanks, a sign and the digits that follow; anything else ends it, no
/// digits give 0, and the value saturates at the `long` range before being cut to 32 bits
/// (`timeout 2147483648` is too short for chronyc too).
pub fn c_atoi(s: &str) -> i32 {
    c_int_prefix(s).map_or(0, |(v, _)| v)
}

/// `sscanf("%d")`: the number at the start of `s` and the rest, or `None` without digits.
pub fn c_int_prefix(s: &str) -> Option<(i32, &str)> {
    let s = s.trim_start();
    let sign = usize::from(s.starts_with(['-', '+']));
    let end = sign + s[sign..].bytes().take_while(u8::is_ascii_digit).count();
    if end == sign {
        return None;
    }
    let neg = s.starts_with('-');
    let mut v: i64 = 0;
    for b in s[sign..end].bytes() {
        let d = i64::from(b - b'0');
        v = if neg {
            v.saturating_mul(10).saturating_sub(d)
        } else {
            v.saturating_mul(10).saturating_add(d)
        };
    }
    // Cut to 32 bits like C's conversion of a long to int.
    Some((v as i32, &s[end..]))
}

/// `sscanf("%d")` of one word.
pub fn c_int(s: &str) -> Option<i32> {
    c_int_prefix(s).map(|(v, _)| v)
}

/// `sscanf("%lf")`: the longest prefix of `s` (after blanks) that is a number, and the rest.
pub fn c_double_prefix(s: &str) -> Option<(f64, &str)> {
    let s = s.trim_start();
    // Words are short, so trying every prefix from the longest is cheap.
    (1..=s.len())
        .rev()
        .filter(|&n| s.is_char_boundary(n))
        .find_map(|n| s[..n].parse::<f64>().ok().map(|v| (v, &s[n..])))
}

/// `sscanf("%lf")` of one word.
pub fn c_double(s: &str) -> Option<f64> {
    c_double_prefix(s).map(|(v, _)| v)
}

/// `N/M` of `burst` read like `sscanf("%d/%d")`: whatever follows the second number is
/// ignored (chronyc sends `burst 1/2/3` as 1 of 2).
pub fn good_total(arg: &str) -> Option<(i32, i32)> {
    let (good, rest) = c_int_prefix(arg)?;
    let (total, _) = c_int_prefix(rest.strip_prefix('/')?)?;
    Some((good, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_like_c_atoi_and_sscanf() {
        assert_eq!(c_atoi("150x"), 150);
        assert_eq!(c_atoi("x"), 0);
        assert_eq!(c_atoi(""), 0);
        assert_eq!(c_atoi("  -5"), -5);
        assert_eq!(c_atoi("-"), 0);
        assert_eq!(c_atoi("2147483648"), i32::MIN);
        assert_eq!(c_atoi("99999999999"), 1_215_752_191);
        assert_eq!(c_atoi("99999") as u16, 34_463);
        assert_eq!(c_atoi("999999999999999999999999"), -1);
        assert_eq!(c_int("5x"), Some(5));
        assert_eq!(c_int("x5"), None);
        assert_eq!(c_double("1x"), Some(1.0));
        assert_eq!(c_double("1e"), Some(1.0));
        assert_eq!(c_double("-2.5e-3ms"), Some(-2.5e-3));
        assert_eq!(c_double("x"), None);
        assert_eq!(c_double(""), None);
        assert_eq!(c_double("é1"), None);
        assert_eq!(good_total("1/2/3"), Some((1, 2)));
        assert_eq!(good_total("-1/+2"), Some((-1, 2)));
        assert_eq!(good_total("1x/2"), None);
        assert_eq!(good_total("1/x"), None);
        assert_eq!(good_total("/2"), None);
    }
}
