//! chrony's 32-bit cmdmon floating-point format (protocol v6, features.md §4.2).
//!
//! A word holds a 7-bit signed exponent `e` in the top bits and a 25-bit two's-complement
//! coefficient `c` below it; the value is `c · 2^(e−25)`. Encoding normalises the coefficient to
//! at most 24 magnitude bits, saturates large values and flushes tiny ones to zero, exactly as the
//! real chronyd/chronyc pair does on the wire (checked against captured packets in the tests).

const EXP_BITS: u32 = 7;
const COEF_BITS: u32 = 32 - EXP_BITS;
const EXP_MIN: i32 = -(1 << (EXP_BITS - 1));
const EXP_MAX: i32 = (1 << (EXP_BITS - 1)) - 1;
const COEF_MIN: i64 = -(1 << (COEF_BITS - 1));
const COEF_MAX: i64 = (1 << (COEF_BITS - 1)) - 1;

/// Decodes a wire word (host order) into a value.
pub fn decode_float(word: u32) -> f64 {
    // Arithmetic shifts sign-extend both fields.
    let exp = (word as i32) >> COEF_BITS;
    let coef = ((word << EXP_BITS) as i32) >> EXP_BITS;
    f64::from(coef) * 2f64.powi(exp - COEF_BITS as i32)
}

/// Encodes a value into a wire word (host order). NaN encodes as 0.
pub fn encode_float(x: f64) -> u32 {
    if x.is_nan() {
        return 0;
    }
    let neg = x < 0.0;
    let mag = x.abs();
    let (exp, coef): (i32, i64) = if mag < 1e-100 {
        (0, 0)
    } else if mag > 1e100 {
        (EXP_MAX, if neg { -COEF_MIN } else { COEF_MAX })
    } else {
        // mag lies in [2^(e-1), 2^e); the rounded coefficient then has 25 magnitude bits and is
        // shifted down until it fits in 24.
        let mut e = mag.log2().floor() as i32 + 1;
        let mut c = (mag * 2f64.powi(COEF_BITS as i32 - e)).round() as i64;
        while c > COEF_MAX {
            c >>= 1;
            e += 1;
        }
        if e > EXP_MAX {
            (EXP_MAX, if neg { -COEF_MIN } else { COEF_MAX })
        } else if e < EXP_MIN {
            // Denormalise: keep what fits at the smallest exponent, else flush to zero.
            if e + COEF_BITS as i32 >= EXP_MIN {
                (EXP_MIN, c >> (EXP_MIN - e))
            } else {
                (0, 0)
            }
        } else {
            (e, c)
        }
    };
    let signed = if neg { -coef } else { coef };
    let coef_bits = (signed as u32) & ((1u32 << COEF_BITS) - 1);
    ((exp as u32) << COEF_BITS) | coef_bits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captured_words_decode_to_chronyc_arguments() {
        // Words taken from real chronyc 4.3 requests (makestep 0.1 3, reselectdist 0.0001,
        // local distance 1.0, add server defaults maxdelay 3 / maxdelaydevratio 10).
        assert_eq!(encode_float(0.1), 0xfccc_cccd);
        assert_eq!(encode_float(0.0001), 0xe8d1_b717);
        assert_eq!(encode_float(1.0), 0x0480_0000);
        assert_eq!(encode_float(3.0), 0x06c0_0000);
        assert_eq!(encode_float(10.0), 0x0aa0_0000);
        assert_eq!(decode_float(0x0480_0000), 1.0);
        assert_eq!(decode_float(0x0aa0_0000), 10.0);
    }

    #[test]
    fn zero_nan_and_tiny_encode_as_zero() {
        assert_eq!(encode_float(0.0), 0);
        assert_eq!(encode_float(-0.0), 0);
        assert_eq!(encode_float(f64::NAN), 0);
        assert_eq!(encode_float(1e-101), 0);
        assert_eq!(decode_float(0), 0.0);
    }

    #[test]
    fn huge_values_saturate() {
        let big = decode_float(encode_float(1e120));
        let neg = decode_float(encode_float(-1e120));
        assert!(big > 4e18 && big.is_finite());
        assert_eq!(neg, -big - 2f64.powi(EXP_MAX - COEF_BITS as i32));
        assert_eq!(decode_float(encode_float(f64::INFINITY)), big);
    }

    #[test]
    fn round_trip_keeps_24_bits_of_precision() {
        let mut x = 1.234_567_89e-19;
        while x < 4e18 {
            for v in [x, -x] {
                let back = decode_float(encode_float(v));
                assert!(
                    ((back - v) / v).abs() < 1.0 / f64::from(1u32 << 23),
                    "{v} -> {back}"
                );
            }
            x *= 3.7;
        }
    }

    #[test]
    fn decoded_words_re_encode_identically() {
        for word in [
            0x0480_0000u32,
            0xfccc_cccd,
            0xe8d1_b717,
            0xdf76_06f9,
            0xceec_5a30,
            0xda86_760b,
            0xf768_ba3b,
            0x0482_4e11,
            0xfeed_beef,
        ] {
            assert_eq!(encode_float(decode_float(word)), word, "{word:08x}");
        }
    }

    #[test]
    fn tiny_values_denormalise_before_flushing() {
        let tiny = 2f64.powi(-75);
        let w = encode_float(tiny);
        assert_eq!((w as i32) >> COEF_BITS, EXP_MIN);
        assert_eq!(decode_float(w), tiny);
        assert_eq!(encode_float(2f64.powi(EXP_MIN - 60)), 0);
    }
}
