//! Number scanning with the semantics chronyd's C parser has.
//!
//! chronyd reads most single-value directives with a scanf-style *prefix* conversion: `port 1x`
//! is accepted as port 1, `maxsamples 1.5` as 1 (verified against chronyd 4.3). Options on
//! `server`, `local`, `ratelimit` and `hwtimestamp` lines are *strict*: the whole token must be a
//! number (`minpoll 4x` is fatal). Both behaviours are reproduced here so we accept and reject
//! exactly the same lines. Integers follow glibc: leading `+`/`-`, decimal digits, and on
//! overflow the 64-bit `long` saturates and is then truncated to `int`.

/// Result of a prefix scan: the value and how many bytes were consumed.
pub(crate) type Scanned<T> = Option<(T, usize)>;

/// scanf `%d`-like prefix scan (after optional leading whitespace).
pub(crate) fn scan_i32(s: &str) -> Scanned<i32> {
    scan_i64(s).map(|(v, n)| (v as i32, n))
}

/// scanf `%ld`-like prefix scan; saturates on overflow like glibc's strtol.
pub(crate) fn scan_i64(s: &str) -> Scanned<i64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let mut neg = false;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        neg = b[i] == b'-';
        i += 1;
    }
    let start = i;
    let mut v: i64 = 0;
    let mut overflow = false;
    while i < b.len() && b[i].is_ascii_digit() {
        let d = i64::from(b[i] - b'0');
        match v.checked_mul(10).and_then(|x| x.checked_add(d)) {
            Some(x) => v = x,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return None;
    }
    let v = if overflow {
        if neg {
            i64::MIN
        } else {
            i64::MAX
        }
    } else if neg {
        -v
    } else {
        v
    };
    Some((v, i))
}

/// scanf `%u`-like prefix scan: like C, a leading `-` wraps modulo 2^32.
pub(crate) fn scan_u32(s: &str) -> Scanned<u32> {
    scan_i64(s).map(|(v, n)| (v as u32, n))
}

/// strtod-like prefix scan of a decimal floating-point number, `inf`, `infinity` or `nan`.
/// Hexadecimal floats are read as their leading `0` (documented difference: value only).
pub(crate) fn scan_f64(s: &str) -> Scanned<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let rest = &b[i..];
    for word in ["infinity", "inf", "nan"] {
        // Byte comparison: `rest` may start with a multi-byte character.
        if rest.len() >= word.len() && rest[..word.len()].eq_ignore_ascii_case(word.as_bytes()) {
            let end = i + word.len();
            let v = s[start..end].to_ascii_lowercase().parse::<f64>().ok()?;
            return Some((v, end));
        }
    }
    let mut digits = 0;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
            digits += 1;
        }
    }
    if digits == 0 {
        return None;
    }
    // An exponent counts only when digits follow it.
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        let exp_start = j;
        while j < b.len() && b[j].is_ascii_digit() {
            j += 1;
        }
        if j > exp_start {
            i = j;
        }
    }
    let text = &s[start..i];
    let text = text.strip_suffix('.').unwrap_or(text);
    let v = text.parse::<f64>().ok()?;
    Some((v, i))
}

/// One conversion of a scanf format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Conv {
    Int,
    Float,
}

/// sscanf over a whole argument string with conversions separated by whitespace (`"%lf %d"`):
/// each conversion skips whitespace and takes a numeric prefix, so `1.2.3 x` reads as 1.2 and
/// 0.3. Returns the values (integers as exact f64) only if every conversion succeeded.
pub(crate) fn scan_seq(s: &str, convs: &[Conv]) -> Option<Vec<f64>> {
    let mut pos = 0;
    let mut out = Vec::with_capacity(convs.len());
    for c in convs {
        let rest = s.get(pos..)?;
        let (v, n) = match c {
            Conv::Int => scan_i32(rest).map(|(v, n)| (f64::from(v), n))?,
            Conv::Float => scan_f64(rest)?,
        };
        out.push(v);
        pos += n;
    }
    Some(out)
}

/// The whole token must be an integer (chronyd's `%d%n` + length check).
pub(crate) fn strict_i32(s: &str) -> Option<i32> {
    match scan_i32(s) {
        Some((v, n)) if n == s.len() => Some(v),
        _ => None,
    }
}

/// The whole token must be an unsigned integer (`%u` semantics, wrapping `-`).
pub(crate) fn strict_u32(s: &str) -> Option<u32> {
    match scan_u32(s) {
        Some((v, n)) if n == s.len() => Some(v),
        _ => None,
    }
}

/// The whole token must be a floating-point number.
pub(crate) fn strict_f64(s: &str) -> Option<f64> {
    match scan_f64(s) {
        Some((v, n)) if n == s.len() => Some(v),
        _ => None,
    }
}

/// Prefix integer: chronyd accepts `1x` as 1 for single-value directives.
pub(crate) fn lenient_i32(s: &str) -> Option<i32> {
    scan_i32(s).map(|(v, _)| v)
}

/// Prefix float: chronyd accepts `1x` as 1.0 for single-value directives.
pub(crate) fn lenient_f64(s: &str) -> Option<f64> {
    scan_f64(s).map(|(v, _)| v)
}

/// How a port number given as a C `int` ends up on the wire (`htons` keeps the low 16 bits).
pub(crate) fn port_from_int(v: i32) -> u16 {
    v as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_integer_stops_at_first_non_digit() {
        assert_eq!(scan_i32("1x"), Some((1, 1)));
        assert_eq!(scan_i32("+5"), Some((5, 2)));
        assert_eq!(scan_i32("-0"), Some((0, 2)));
        assert_eq!(scan_i32("0x10"), Some((0, 1)));
        assert_eq!(scan_i32("x"), None);
        assert_eq!(scan_i32("-"), None);
    }

    #[test]
    fn integer_overflow_saturates_then_truncates_like_glibc() {
        assert_eq!(scan_i32("99999999999999999999"), Some((-1, 20)));
        assert_eq!(scan_i32("4294967296"), Some((0, 10)));
    }

    #[test]
    fn strict_forms_reject_trailing_garbage() {
        assert_eq!(strict_i32("4x"), None);
        assert_eq!(strict_i32("4"), Some(4));
        assert_eq!(strict_f64("1e-9"), Some(1e-9));
        assert_eq!(strict_f64("1x"), None);
        assert_eq!(strict_f64("inf"), Some(f64::INFINITY));
        assert_eq!(strict_u32("-1"), Some(u32::MAX));
    }

    #[test]
    fn scanf_sequence_reads_across_token_boundaries() {
        use Conv::*;
        assert_eq!(scan_seq("1.2.3 x", &[Float, Float]), Some(vec![1.2, 0.3]));
        assert_eq!(scan_seq("1x 3", &[Float, Int]), None);
        assert_eq!(scan_seq("1 3x", &[Float, Int]), Some(vec![1.0, 3.0]));
        assert_eq!(scan_seq("1", &[Float, Int]), None);
    }

    #[test]
    fn float_prefix_accepts_c_forms() {
        assert_eq!(scan_f64("1."), Some((1.0, 2)));
        assert_eq!(scan_f64(".5x"), Some((0.5, 2)));
        assert_eq!(scan_f64("1e"), Some((1.0, 1)));
        assert_eq!(scan_f64("."), None);
        assert_eq!(scan_f64("NaN").map(|(v, _)| v.is_nan()), Some(true));
        assert_eq!(scan_f64("\u{109f03}"), None);
        assert_eq!(scan_f64("i\u{e9}"), None);
    }
}
