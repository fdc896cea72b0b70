//! Time for the policy engine: instants as integer nanoseconds, xsd:duration, and the interval index that
//! turns any boolean combination of dateTime constraints into one sorted list of boundaries, answered by a
//! binary search. Parsing happens here once, at load or when a request arrives; never during evaluation.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};

/// Nanoseconds since 1970-01-01T00:00:00Z. `i128` so that "forever" dates such as 9999-12-31 fit.
pub type Nanos = i128;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The evaluation instant of a request, with the local calendar fields the profile operands need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTime {
    /// The instant, for dateTime constraints.
    pub instant: Nanos,
    /// ISO 8601 day of the week in the time's own UTC offset: 1 = Monday ... 7 = Sunday.
    pub day_of_week: u8,
    /// Hour of the day (0–23) in the time's own UTC offset.
    pub hour_of_day: u8,
}

impl RequestTime {
    /// Parses an xsd:dateTime / RFC 3339 timestamp. A time without a UTC offset is refused: it is ambiguous.
    pub fn parse(s: &str) -> Result<RequestTime, String> {
        let parsed = DateTime::parse_from_rfc3339(s)
            .map_err(|e| format!("'{s}' is not an xsd:dateTime with a time zone ({e})"))?;
        Ok(RequestTime::from_datetime(&parsed))
    }

    /// Builds the request time from a chrono timestamp; day and hour are taken in its own offset.
    pub fn from_datetime(t: &DateTime<FixedOffset>) -> RequestTime {
        RequestTime {
            instant: instant_of(t),
            day_of_week: t.weekday().number_from_monday() as u8,
            hour_of_day: t.hour() as u8,
        }
    }
}

fn instant_of(t: &DateTime<FixedOffset>) -> Nanos {
    i128::from(t.timestamp()) * NANOS_PER_SECOND + i128::from(t.timestamp_subsec_nanos())
}

/// Parses an xsd:dateTime right operand into an instant.
pub(crate) fn parse_datetime(s: &str) -> Result<Nanos, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| instant_of(&t))
        .map_err(|e| format!("'{s}' is not an xsd:dateTime with a time zone ({e})"))
}

/// Parses an xsd:date (`2024-05-01`, optionally with `Z` or `±hh:mm`) into the half-open day it covers.
/// Without a zone the day is taken in UTC, as the engine's instants are.
pub(crate) fn parse_date(s: &str) -> Result<(Nanos, Nanos), String> {
    let bad = || format!("'{s}' is not an xsd:date");
    let (date_part, zone) = s.split_at(s.len().min(10));
    let date = NaiveDate::parse_from_str(date_part, "%Y-%m-%d").map_err(|_| bad())?;
    let offset_seconds = match zone {
        "" | "Z" => 0,
        z => {
            let sign = match z.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(bad()),
            };
            let (h, m) = z[1..].split_once(':').ok_or_else(bad)?;
            let h: i32 = h.parse().map_err(|_| bad())?;
            let m: i32 = m.parse().map_err(|_| bad())?;
            sign * (h * 3600 + m * 60)
        }
    };
    let midnight: NaiveDateTime = date.and_hms_opt(0, 0, 0).ok_or_else(bad)?;
    let start =
        i128::from(midnight.and_utc().timestamp() - i64::from(offset_seconds)) * NANOS_PER_SECOND;
    Ok((start, start + 86_400 * NANOS_PER_SECOND))
}

/// An xsd:duration split into calendar months (not a fixed length) and an exact number of nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XsdDuration {
    pub months: i64,
    pub nanos: Nanos,
}

impl XsdDuration {
    /// Parses `PnYnMnDTnHnMnS` (with an optional leading `-`, fractional seconds allowed).
    pub fn parse(s: &str) -> Result<XsdDuration, String> {
        let bad = || format!("'{s}' is not an xsd:duration");
        let (negative, rest) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s),
        };
        let body = rest.strip_prefix('P').ok_or_else(bad)?;
        if body.is_empty() || body.ends_with('T') {
            return Err(bad());
        }
        let (date, time) = match body.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (body, None),
        };
        let mut months: i64 = 0;
        let mut nanos: i128 = 0;
        for (number, unit) in components(date).ok_or_else(bad)? {
            let n: i64 = number.parse().map_err(|_| bad())?;
            match unit {
                'Y' => months += n * 12,
                'M' => months += n,
                'D' => nanos += i128::from(n) * 86_400 * NANOS_PER_SECOND,
                _ => return Err(bad()),
            }
        }
        if let Some(time) = time {
            for (number, unit) in components(time).ok_or_else(bad)? {
                match unit {
                    'H' => {
                        nanos += i128::from(number.parse::<i64>().map_err(|_| bad())?)
                            * 3600
                            * NANOS_PER_SECOND
                    }
                    'M' => {
                        nanos += i128::from(number.parse::<i64>().map_err(|_| bad())?)
                            * 60
                            * NANOS_PER_SECOND
                    }
                    'S' => nanos += parse_seconds(number).ok_or_else(bad)?,
                    _ => return Err(bad()),
                }
            }
        }
        if negative {
            months = -months;
            nanos = -nanos;
        }
        Ok(XsdDuration { months, nanos })
    }
}

/// Splits `1Y2M3D` into `[("1",'Y'),("2",'M'),("3",'D')]`; `None` when a number lacks its unit.
fn components(s: &str) -> Option<Vec<(&str, char)>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c.is_ascii_alphabetic() {
            if i == start {
                return None;
            }
            out.push((&s[start..i], c));
            start = i + c.len_utf8();
        }
    }
    (start == s.len()).then_some(out)
}

fn parse_seconds(s: &str) -> Option<Nanos> {
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = whole.parse::<u64>().ok()?.into();
    let frac_nanos: i128 = if frac.is_empty() {
        0
    } else {
        let padded = format!("{frac:0<9}");
        padded.parse::<u64>().ok()?.into()
    };
    Some(whole * NANOS_PER_SECOND + frac_nanos)
}

/// A set of instants as sorted, strictly increasing boundaries: an instant is in the set when an odd number
/// of boundaries is at or before it. Each boundary toggles membership, so `[a, b)` is `[a, b]` as a list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IntervalSet {
    boundaries: Vec<Nanos>,
}

impl IntervalSet {
    /// The half-open interval `[from, to)`; `None` ends mean unbounded.
    pub fn between(from: Option<Nanos>, to: Option<Nanos>) -> IntervalSet {
        let mut boundaries = Vec::with_capacity(2);
        boundaries.push(from.unwrap_or(Nanos::MIN));
        if let Some(to) = to {
            if to <= boundaries[0] {
                return IntervalSet::default();
            }
            boundaries.push(to);
        }
        IntervalSet { boundaries }
    }

    pub fn contains(&self, t: Nanos) -> bool {
        self.boundaries.partition_point(|&b| b <= t) % 2 == 1
    }

    /// Number of disjoint intervals, reported in explanations.
    pub fn intervals(&self) -> usize {
        self.boundaries.len().div_ceil(2)
    }

    /// Combines sets by a predicate over "how many of them contain the instant" (and: all, or: at least
    /// one, xone: exactly one), sweeping once over all boundaries.
    pub fn combine(sets: &[&IntervalSet], keep: impl Fn(usize) -> bool) -> IntervalSet {
        let mut events: Vec<Nanos> = sets
            .iter()
            .flat_map(|s| s.boundaries.iter().copied())
            .collect();
        events.sort_unstable();
        events.dedup();
        let mut boundaries = Vec::new();
        let mut inside = keep(0);
        if inside {
            boundaries.push(Nanos::MIN);
        }
        for &point in &events {
            let count = sets.iter().filter(|s| s.contains(point)).count();
            let now = keep(count);
            if now != inside {
                if !(point == Nanos::MIN && boundaries.last() == Some(&Nanos::MIN)) {
                    boundaries.push(point);
                } else {
                    boundaries.pop();
                }
                inside = now;
            }
        }
        IntervalSet { boundaries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_to_exact_nanos_and_months() {
        assert_eq!(
            XsdDuration::parse("P1D").map(|d| d.nanos),
            Ok(86_400 * NANOS_PER_SECOND)
        );
        assert_eq!(
            XsdDuration::parse("PT1H30M").map(|d| d.nanos),
            Ok(5_400 * NANOS_PER_SECOND)
        );
        assert_eq!(
            XsdDuration::parse("PT0.5S").map(|d| d.nanos),
            Ok(NANOS_PER_SECOND / 2)
        );
        assert_eq!(XsdDuration::parse("P1Y2M").map(|d| d.months), Ok(14));
        assert!(XsdDuration::parse("P").is_err());
        assert!(XsdDuration::parse("PT").is_err());
        assert!(XsdDuration::parse("P1H").is_err());
        assert!(XsdDuration::parse("1D").is_err());
    }

    #[test]
    fn combine_computes_union_intersection_and_exactly_one() {
        let a = IntervalSet::between(Some(0), Some(10));
        let b = IntervalSet::between(Some(5), Some(15));
        let and = IntervalSet::combine(&[&a, &b], |n| n == 2);
        let or = IntervalSet::combine(&[&a, &b], |n| n >= 1);
        let xone = IntervalSet::combine(&[&a, &b], |n| n == 1);
        assert!(!and.contains(4) && and.contains(5) && and.contains(9) && !and.contains(10));
        assert!(or.contains(0) && or.contains(14) && !or.contains(15) && !or.contains(-1));
        assert!(xone.contains(4) && !xone.contains(7) && xone.contains(12));
        let not_a = IntervalSet::combine(&[&a], |n| n == 0);
        assert!(not_a.contains(-5) && !not_a.contains(3) && not_a.contains(10));
        let back = IntervalSet::combine(&[&not_a], |n| n == 0);
        assert_eq!(back, a);
    }
}
