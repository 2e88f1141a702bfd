//! ISO 8601 durations (`PT48H`, `P2D`, `PT2S`) as the API speaks them.
//!
//! Years and months are refused: their length depends on the calendar, and an approval delay
//! must mean the same number of seconds wherever it is read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration in whole seconds that remembers how the client wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsoDuration {
    /// Whole seconds, rounded up.
    pub seconds: i64,
    /// Exact milliseconds, for sub-second durations (tests, fast schedules).
    millis: i64,
    text: String,
}

impl IsoDuration {
    /// Parses `P[nW][nD][T[nH][nM][nS]]`. Seconds may carry a fraction, which is rounded up.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("{text:?} is not an ISO 8601 duration such as PT48H or P2D");
        let rest = text.strip_prefix('P').ok_or_else(bad)?;
        if rest.is_empty() || rest == "T" {
            return Err(bad());
        }
        let mut seconds: f64 = 0.0;
        let mut in_time = false;
        let mut number = String::new();
        let mut seen_unit = false;
        for c in rest.chars() {
            match c {
                '0'..='9' | '.' | ',' => number.push(if c == ',' { '.' } else { c }),
                'T' if !in_time && number.is_empty() => in_time = true,
                _ => {
                    let n: f64 = number.parse().map_err(|_| bad())?;
                    number.clear();
                    let unit = match (in_time, c) {
                        (false, 'W') => 7.0 * 86_400.0,
                        (false, 'D') => 86_400.0,
                        (true, 'H') => 3_600.0,
                        (true, 'M') => 60.0,
                        (true, 'S') => 1.0,
                        (false, 'Y' | 'M') => {
                            return Err(format!(
                                "{text:?}: years and months are not allowed, use days (P30D)"
                            ));
                        }
                        _ => return Err(bad()),
                    };
                    seconds += n * unit;
                    seen_unit = true;
                }
            }
        }
        if !number.is_empty() || !seen_unit {
            return Err(bad());
        }
        if seconds > 10.0 * 365.0 * 86_400.0 {
            return Err(format!("{text:?} is longer than ten years"));
        }
        Ok(Self {
            seconds: seconds.ceil() as i64,
            millis: (seconds * 1000.0).round() as i64,
            text: text.to_string(),
        })
    }

    /// Parses to a std duration keeping fractions of a second (`PT0.2S`), for settings.
    pub fn parse_precise(text: &str) -> Result<std::time::Duration, String> {
        let d = Self::parse(text)?;
        // Whole seconds are exact; a fraction is only meaningful in the seconds field.
        let frac = text
            .rsplit_once('T')
            .and_then(|(_, t)| t.strip_suffix('S'))
            .and_then(|t| t.rsplit(['H', 'M']).next())
            .and_then(|secs| secs.parse::<f64>().ok())
            .filter(|s| s.fract() != 0.0);
        Ok(match frac {
            Some(secs) => {
                let whole_rest = d.seconds - secs.ceil() as i64;
                std::time::Duration::from_secs_f64(whole_rest.max(0) as f64 + secs)
            }
            None => std::time::Duration::from_secs(d.seconds.max(0) as u64),
        })
    }

    /// A duration of whole seconds, written in the canonical `PT…S` form.
    pub fn from_seconds(seconds: i64) -> Self {
        Self {
            seconds,
            millis: seconds * 1000,
            text: format!("PT{seconds}S"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn as_chrono(&self) -> chrono::TimeDelta {
        chrono::TimeDelta::milliseconds(self.millis)
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for IsoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for IsoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for IsoDuration {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "ISO 8601 duration: weeks, days, hours, minutes, seconds",
            ))
            .examples(["PT48H"])
            .into()
    }
}

impl utoipa::ToSchema for IsoDuration {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_the_api_uses() {
        for (text, secs) in [
            ("PT48H", 172_800),
            ("PT2S", 2),
            ("P2D", 172_800),
            ("P1W", 604_800),
            ("P1DT2H30M", 95_400),
            ("PT0.5S", 1),
            ("PT90M", 5_400),
        ] {
            assert_eq!(IsoDuration::parse(text).unwrap().seconds, secs, "{text}");
        }
    }

    #[test]
    fn refuses_malformed_and_calendar_dependent_durations() {
        for text in [
            "", "P", "PT", "48H", "PT48", "P1M", "P1Y", "PTH", "P1H", "PT1D", "P1.2.3D",
        ] {
            assert!(IsoDuration::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn precise_parsing_keeps_fractions() {
        use std::time::Duration;
        assert_eq!(
            IsoDuration::parse_precise("PT0.2S").unwrap(),
            Duration::from_millis(200)
        );
        assert_eq!(
            IsoDuration::parse_precise("PT1M0.5S").unwrap(),
            Duration::from_millis(60_500)
        );
        assert_eq!(
            IsoDuration::parse_precise("PT5M").unwrap(),
            Duration::from_secs(300)
        );
    }

    #[test]
    fn sub_second_durations_keep_their_milliseconds() {
        let d = IsoDuration::parse("PT0.5S").unwrap();
        assert_eq!(d.as_chrono(), chrono::TimeDelta::milliseconds(500));
        assert_eq!(d.seconds, 1);
    }

    #[test]
    fn keeps_the_clients_spelling() {
        let d: IsoDuration = serde_json::from_str("\"P2D\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"P2D\"");
    }
}
