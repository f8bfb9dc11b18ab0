//! NTP time formats (RFC 5905 §6): the 64-bit timestamp and the 32-bit short format.
//!
//! A 64-bit timestamp holds 32 bits of seconds since the start of the current NTP era and 32
//! bits of fraction. The era (a 2^32-second span; era 0 began 1900-01-01, era 1 begins in
//! February 2036) is not on the wire, so converting to a full time needs a pivot: like chrony,
//! we pick the era that puts the result closest to a time the caller believes is near (its own
//! clock, or a build-time date). Differences between timestamps are taken modulo 2^32 seconds
//! with two's-complement arithmetic, which RFC 5905 §6 points out gives the right answer across
//! an era boundary as long as the two times are within 68 years of each other.

/// Seconds between the NTP prime epoch (1900-01-01) and the Unix epoch (1970-01-01).
pub const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// 2^32 as a float, the scale of the 32-bit fraction.
const FRAC_SCALE: f64 = 4_294_967_296.0;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A 64-bit NTP timestamp: seconds in the era in the high 32 bits, fraction in the low 32.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, PartialOrd, Ord)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The all-zero timestamp, which RFC 5905 uses to mean "unknown / not set".
    pub const ZERO: NtpTimestamp = NtpTimestamp(0);

    /// Builds a timestamp from its era seconds and fraction.
    #[inline]
    pub const fn from_parts(seconds: u32, fraction: u32) -> Self {
        NtpTimestamp(((seconds as u64) << 32) | fraction as u64)
    }

    /// Seconds within the era (high 32 bits).
    #[inline]
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Fraction of a second in units of 2^-32 s (low 32 bits).
    #[inline]
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// True for the all-zero timestamp.
    #[inline]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Network (big-endian) byte order, as on the wire.
    #[inline]
    pub const fn to_be_bytes(self) -> [u8; 8] {
        self.0.to_be_bytes()
    }

    /// Reads a timestamp in network byte order.
    #[inline]
    pub const fn from_be_bytes(bytes: [u8; 8]) -> Self {
        NtpTimestamp(u64::from_be_bytes(bytes))
    }

    /// Converts a Unix time to an NTP timestamp, dropping the era (the seconds wrap modulo
    /// 2^32). Nanoseconds of 10^9 or more carry into the seconds. The fraction is rounded to
    /// the nearest 2^-32 s, so `to_unix` gives the same nanoseconds back.
    pub fn from_unix(secs: i64, nanos: u32) -> Self {
        let carry = i64::from(nanos / 1_000_000_000);
        let nanos = u64::from(nanos % 1_000_000_000);
        // Only the low 32 bits of the NTP seconds survive, so wrapping arithmetic is exact.
        let ntp_secs = secs.wrapping_add(carry).wrapping_add(NTP_UNIX_OFFSET) as u32;
        // nanos < 10^9, so (nanos << 32) + 5*10^8 fits in u64 and the quotient is < 2^32.
        let frac = ((nanos << 32) + NANOS_PER_SEC / 2) / NANOS_PER_SEC;
        NtpTimestamp::from_parts(ntp_secs, frac as u32)
    }

    /// Unix seconds of the era that puts this timestamp closest to `pivot_unix_secs` (within
    /// -2^31..2^31 seconds of it), and the fraction rounded to nanoseconds (always < 10^9; a fraction that rounds to a whole second carries).
    /// Saturates at the ends of the `i64` range instead of overflowing.
    pub fn to_unix(self, pivot_unix_secs: i64) -> (i64, u32) {
        let secs = self.unix_seconds_near(pivot_unix_secs);
        // frac * 10^9 + 2^31 < 2^64. Fractions within half a nanosecond of the next second
        // round up to 10^9, which carries into the seconds.
        let nanos = ((u64::from(self.fraction()) * NANOS_PER_SEC) + (1 << 31)) >> 32;
        if nanos >= NANOS_PER_SEC {
            (secs.saturating_add(1), 0)
        } else {
            (secs, nanos as u32)
        }
    }

    /// Converts Unix seconds as a float. Non-finite input (NaN, ±∞) gives [`NtpTimestamp::ZERO`];
    /// the seconds wrap into the era like [`NtpTimestamp::from_unix`].
    pub fn from_unix_f64(secs: f64) -> Self {
        if !secs.is_finite() {
            return NtpTimestamp::ZERO;
        }
        let whole = secs.floor();
        // `secs - floor(secs)` is exact in binary floating point and lies in [0, 1).
        let frac = ((secs - whole) * FRAC_SCALE).round();
        // Outside the i64 range `as` saturates; such inputs have no meaningful era anyway.
        let mut ntp_secs = (whole as i64).wrapping_add(NTP_UNIX_OFFSET) as u32;
        let frac = if frac >= FRAC_SCALE {
            ntp_secs = ntp_secs.wrapping_add(1);
            0
        } else {
            frac as u32
        };
        NtpTimestamp::from_parts(ntp_secs, frac)
    }

    /// Unix seconds as a float, era chosen closest to `pivot_unix_secs`.
    pub fn to_unix_f64(self, pivot_unix_secs: i64) -> f64 {
        self.unix_seconds_near(pivot_unix_secs) as f64 + f64::from(self.fraction()) / FRAC_SCALE
    }

    /// `self - earlier` in seconds, computed modulo 2^32 s as a signed 64-bit fixed-point
    /// difference (RFC 5905 §6): correct across an era boundary when the two times are less
    /// than 68 years apart.
    #[inline]
    pub fn diff_seconds(self, earlier: NtpTimestamp) -> f64 {
        (self.0.wrapping_sub(earlier.0) as i64) as f64 / FRAC_SCALE
    }

    /// Adds a signed number of seconds, wrapping into the era. Non-finite or out-of-range
    /// offsets (beyond ±2^31 s, which cannot be expressed in one era) saturate at ±2^31 s;
    /// NaN adds nothing.
    pub fn add_seconds(self, seconds: f64) -> Self {
        let delta = if seconds.is_nan() {
            0
        } else {
            // `as` saturates at the ends of i64, which is ±2^31 s in 32.32 fixed point.
            (seconds * FRAC_SCALE).round() as i64
        };
        NtpTimestamp(self.0.wrapping_add(delta as u64))
    }

    fn unix_seconds_near(self, pivot_unix_secs: i64) -> i64 {
        // The pivot's NTP era seconds, modulo 2^32 (truncation keeps exactly the low bits).
        let pivot_ntp = pivot_unix_secs.wrapping_add(NTP_UNIX_OFFSET) as u32;
        // Signed distance from the pivot in -2^31..2^31.
        let delta = i64::from(self.seconds().wrapping_sub(pivot_ntp) as i32);
        pivot_unix_secs.saturating_add(delta)
    }
}

/// The 32-bit NTP short format: 16 bits of seconds, 16 bits of fraction (RFC 5905 §6). Used
/// for root delay and root dispersion.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct NtpShort(pub u32);

impl NtpShort {
    /// The largest value, just under 65536 s.
    pub const MAX: NtpShort = NtpShort(u32::MAX);

    /// Converts seconds, rounding to the nearest 2^-16 s. Negative values and NaN give 0,
    /// values at or above 65536 s give [`NtpShort::MAX`].
    pub fn from_seconds(s: f64) -> Self {
        // Float-to-int `as` saturates and maps NaN to 0, which is the documented behaviour.
        NtpShort((s * 65536.0).round() as u32)
    }

    /// The value in seconds.
    #[inline]
    pub fn to_seconds(self) -> f64 {
        f64::from(self.0) / 65536.0
    }

    /// Network (big-endian) byte order.
    #[inline]
    pub const fn to_be_bytes(self) -> [u8; 4] {
        self.0.to_be_bytes()
    }

    /// Reads a short-format value in network byte order.
    #[inline]
    pub const fn from_be_bytes(bytes: [u8; 4]) -> Self {
        NtpShort(u32::from_be_bytes(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_epoch_is_ntp_2208988800() {
        let t = NtpTimestamp::from_unix(0, 0);
        assert_eq!(t.seconds(), 2_208_988_800);
        assert_eq!(t.fraction(), 0);
        assert_eq!(t.to_unix(0), (0, 0));
    }

    #[test]
    fn half_second_is_fraction_2_pow_31() {
        let t = NtpTimestamp::from_unix(1, 500_000_000);
        assert_eq!(t.fraction(), 1 << 31);
        assert_eq!(t.to_unix(0), (1, 500_000_000));
    }

    #[test]
    fn nanos_overflow_carries_into_seconds() {
        assert_eq!(
            NtpTimestamp::from_unix(5, 1_500_000_000),
            NtpTimestamp::from_unix(6, 500_000_000)
        );
    }

    #[test]
    fn largest_nanos_do_not_round_into_next_second() {
        let t = NtpTimestamp::from_unix(7, 999_999_999);
        assert_eq!(t.seconds(), NtpTimestamp::from_unix(7, 0).seconds());
        assert_eq!(t.to_unix(0), (7, 999_999_999));
        // The largest fraction is closer to the next second than to 999_999_999 ns.
        let max = NtpTimestamp::from_parts(NTP_UNIX_OFFSET as u32, u32::MAX);
        assert_eq!(max.to_unix(0), (1, 0));
    }

    #[test]
    fn era_1_starts_2036_02_07() {
        // 2036-02-07T06:28:16Z is the first second of era 1: NTP seconds wrap to 0.
        let era1 = 2_085_978_496_i64;
        let t = NtpTimestamp::from_unix(era1, 0);
        assert_eq!(t.seconds(), 0);
        // With a pivot in 2030, the wrapped timestamp still comes back in 2036.
        assert_eq!(t.to_unix(1_900_000_000), (era1, 0));
        // With a pivot in 1950, the same bits mean 1900-01-01.
        assert_eq!(t.to_unix(-631_152_000), (-NTP_UNIX_OFFSET, 0));
    }

    #[test]
    fn pivot_picks_closest_era() {
        let t = NtpTimestamp::from_unix(1_700_000_000, 0);
        assert_eq!(t.to_unix(1_700_000_000).0, 1_700_000_000);
        // A pivot 100 years later still returns the value within 68 years of the pivot.
        let pivot = 1_700_000_000 + 100 * 365 * 86_400;
        let (secs, _) = t.to_unix(pivot);
        assert_eq!(secs, 1_700_000_000 + (1_i64 << 32));
        assert!((secs - pivot).abs() <= 1 << 31);
    }

    #[test]
    fn to_unix_saturates_at_extreme_pivots() {
        let t = NtpTimestamp::from_parts(u32::MAX, 0);
        let _ = t.to_unix(i64::MAX);
        let _ = t.to_unix(i64::MIN);
        let _ = t.to_unix_f64(i64::MAX);
    }

    #[test]
    fn diff_is_signed_across_era_boundary() {
        let before = NtpTimestamp::from_parts(u32::MAX, 0);
        let after = NtpTimestamp::from_parts(1, 1 << 31);
        assert_eq!(after.diff_seconds(before), 2.5);
        assert_eq!(before.diff_seconds(after), -2.5);
    }

    #[test]
    fn f64_conversion_keeps_sub_microsecond_precision() {
        let t = NtpTimestamp::from_unix_f64(1_700_000_000.25);
        assert_eq!(t.fraction(), 1 << 30);
        assert_eq!(t.to_unix_f64(1_700_000_000), 1_700_000_000.25);
        let neg = NtpTimestamp::from_unix_f64(-0.5);
        assert_eq!(neg.to_unix(0), (-1, 500_000_000));
    }

    #[test]
    fn f64_non_finite_is_zero() {
        assert_eq!(NtpTimestamp::from_unix_f64(f64::NAN), NtpTimestamp::ZERO);
        assert_eq!(
            NtpTimestamp::from_unix_f64(f64::INFINITY),
            NtpTimestamp::ZERO
        );
        assert_eq!(
            NtpTimestamp::from_unix_f64(f64::NEG_INFINITY),
            NtpTimestamp::ZERO
        );
    }

    #[test]
    fn f64_fraction_rounding_up_carries() {
        // Just below a whole second rounds to the next second with a zero fraction.
        let t = NtpTimestamp::from_unix_f64(10.0 - 1e-12);
        assert_eq!(t, NtpTimestamp::from_unix(10, 0));
    }

    #[test]
    fn add_seconds_wraps_and_saturates() {
        let t = NtpTimestamp::from_parts(u32::MAX, 0);
        assert_eq!(t.add_seconds(1.5), NtpTimestamp::from_parts(0, 1 << 31));
        assert_eq!(t.add_seconds(f64::NAN), t);
        assert_eq!(
            NtpTimestamp::ZERO.add_seconds(-0.5),
            NtpTimestamp::from_parts(u32::MAX, 1 << 31)
        );
        let far = NtpTimestamp::ZERO.add_seconds(f64::INFINITY);
        // Saturated to just under +2^31 s, which rounds to 2^31 in f64.
        assert_eq!(far.diff_seconds(NtpTimestamp::ZERO), 2f64.powi(31));
    }

    #[test]
    fn short_format_saturates_and_maps_nan_to_zero() {
        assert_eq!(NtpShort::from_seconds(f64::NAN), NtpShort(0));
        assert_eq!(NtpShort::from_seconds(-3.0), NtpShort(0));
        assert_eq!(NtpShort::from_seconds(1e9), NtpShort::MAX);
        assert_eq!(NtpShort::from_seconds(f64::INFINITY), NtpShort::MAX);
        assert_eq!(NtpShort::from_seconds(1.5), NtpShort(0x0001_8000));
        assert_eq!(NtpShort(0x0001_8000).to_seconds(), 1.5);
    }
}
