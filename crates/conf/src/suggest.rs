//! "Did you mean …?" hints for misspelt or foreign directives and options.
//!
//! chronyd only says "Invalid directive"; we keep its wording (scripts match on it) and append a
//! hint. Known foreign spellings (ntpd's `restrict`, the seeds' `schedrr`, standalone `minpoll`)
//! get a specific fix; anything else gets the nearest name by edit distance.

/// Specific fixes for names people write that chrony does not know.
const ALIASES: &[(&str, &str)] = &[
    ("schedrr", "did you mean `sched_priority`?"),
    ("sched_rr", "did you mean `sched_priority`?"),
    ("schedpriority", "did you mean `sched_priority`?"),
    ("lockall", "did you mean `lock_all`?"),
    ("minpoll", "`minpoll` is an option of `server`/`pool`/`peer` lines, e.g. `server HOST iburst minpoll 4`"),
    ("maxpoll", "`maxpoll` is an option of `server`/`pool`/`peer` lines, e.g. `server HOST iburst maxpoll 10`"),
    ("iburst", "`iburst` is an option of `server`/`pool`/`peer` lines"),
    ("maxsources", "`maxsources` is an option of `pool` lines, e.g. `pool NAME iburst maxsources 4`"),
    ("restrict", "ntpd syntax; chrony uses `allow`/`deny` (and `cmdallow`/`cmddeny`)"),
    ("fudge", "ntpd syntax; use `local stratum N` or `refclock ... stratum N`"),
    ("tinker", "ntpd syntax; see `makestep`, `maxslewrate`, `maxdrift`"),
    ("statsdir", "did you mean `logdir`?"),
    ("statistics", "did you mean `log statistics`?"),
    ("keys", "did you mean `keyfile`?"),
    ("leapfile", "did you mean `leapsectz` (or `leapseclist` in chrony >= 4.6)?"),
    ("interface", "did you mean `bindaddress` or `binddevice`?"),
    ("nts", "`nts` is an option of `server`/`pool` lines, e.g. `server HOST iburst nts`"),
];

/// A hint for an unknown name among `known` names, if any is close enough.
pub(crate) fn hint_for(name: &str, known: &[&str]) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if let Some((_, h)) = ALIASES.iter().find(|(a, _)| *a == lower) {
        return Some((*h).to_string());
    }
    nearest(&lower, known).map(|k| format!("did you mean `{k}`?"))
}

/// The known name with the smallest edit distance, when the distance is small relative to the
/// length (so that random words get no misleading hint). Bounded: names over 64 bytes skip.
pub(crate) fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    if word.is_empty() || word.len() > 64 {
        return None;
    }
    let mut best: Option<(&str, usize)> = None;
    for k in known {
        let d = distance(word, k);
        if best.is_none_or(|(_, bd)| d < bd) {
            best = Some((k, d));
        }
    }
    let (k, d) = best?;
    let limit = match word.len() {
        0..=3 => 1,
        4..=6 => 2,
        _ => 3,
    };
    (d <= limit).then_some(k)
}

/// Damerau-Levenshtein (optimal string alignment) distance over bytes.
fn distance(a: &str, b: &str) -> usize {
    let a = a.as_bytes();
    let b = b.as_bytes();
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(prev2[j - 2] + 1);
            }
            cur[j] = v;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedrr_suggests_sched_priority() {
        assert_eq!(
            hint_for("schedrr", &["sched_priority"]).as_deref(),
            Some("did you mean `sched_priority`?")
        );
    }

    #[test]
    fn typo_suggests_nearest_directive() {
        let known = ["driftfile", "rtcsync", "makestep"];
        assert_eq!(nearest("driftfle", &known), Some("driftfile"));
        assert_eq!(nearest("rtcsnyc", &known), Some("rtcsync"));
        assert_eq!(nearest("banana", &known), None);
    }
}
