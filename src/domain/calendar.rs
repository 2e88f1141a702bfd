//! Business calendars: weekly working windows in a time zone, minus holidays, and the arithmetic
//! that turns "48 business hours" into an instant.
//!
//! The rules below are the product's; the timers and the HTTP layer rely on them.
//!
//! - **Windows are wall-clock times in the calendar's time zone.** `["09:00", "17:00"]` means
//!   "while the office clock shows 09:00 to 17:00". `"24:00"` may end a window, never start one.
//! - **A window whose end is before its start crosses midnight**: `mon ["22:00", "06:00"]` runs
//!   from Monday 22:00 to Tuesday 06:00. `["22:00", "00:00"]` is read as `["22:00", "24:00"]`.
//! - **A window belongs to the local date it starts on.** When that date is a holiday the whole
//!   window is skipped; a holiday on the date it ends on does not cut it short. One rule that
//!   looks at one date keeps a night shift whole, never half-counted.
//! - **Daylight-saving changes.** Each end of a window is *the first instant at which the local
//!   clock shows that time or later*. A time inside a spring-forward gap therefore means the
//!   moment the gap ends (02:30 on 2026-03-29 in Paris is 03:00 CEST), and a time repeated at
//!   fall-back means its first occurrence. A window counts the real time that passes between its
//!   ends: 09:00–17:00 is 8 hours on either day, 01:00–04:00 is 2 hours on Paris's
//!   spring-forward day and 4 on its fall-back day, and a window lying wholly inside a gap is
//!   empty that day. Every local time maps to exactly one instant, so results are deterministic.
//! - **Windows are half-open**: the opening instant is working time, the closing one is not.
//!   Adding zero business time gives `start` when `start` is working time and the next opening
//!   otherwise; a deadline that uses a window up exactly is that window's closing time, not the
//!   next opening. Negative business durations count as zero.
//! - **Overlapping windows are refused**, including a window crossing midnight into the next
//!   day's first window, and Sunday night into Monday morning: overlap almost always means a
//!   typo, and merging silently would hide it. Touching windows (`12:00` end, `12:00` start) are
//!   fine and behave as one.
//! - **Searches stop [`SEARCH_HORIZON_DAYS`] after the start**, so a calendar whose every window
//!   falls on a holiday cannot loop forever. The arithmetic walks window by window, never minute
//!   by minute.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{
    DateTime, Datelike, Days, MappedLocalTime, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::validate::{Faults, FieldError, index, join};

/// Weekday keys of `weekly`, Monday first as in ISO 8601.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// Windows one weekday may list; a real timetable needs a handful.
pub const MAX_WINDOWS_PER_DAY: usize = 48;
/// Holidays one calendar may list: decades of public holidays, with room to spare.
pub const MAX_HOLIDAYS: usize = 5_000;
/// How many days past the start the arithmetic looks for working time: ten years.
pub const SEARCH_HORIZON_DAYS: u64 = 3_653;

const MINUTES_PER_DAY: u32 = 24 * 60;
const MINUTES_PER_WEEK: u32 = 7 * MINUTES_PER_DAY;

/// Fields a response may add, accepted and ignored on `PUT` so a client can send back what it read.
const READ_ONLY: &[&str] = &["id", "created_at", "updated_at"];

/// Body of `PUT /v1/calendars/{id}` and the stored form.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CalendarDef {
    /// IANA time zone in which the windows and holidays are read.
    #[schema(example = "Europe/Paris")]
    pub time_zone: String,
    /// Working windows per weekday (`mon` … `sun`), each `[start, end]` in `"HH:MM"`. An end
    /// before the start runs past midnight; `"24:00"` may end a window. Windows must not overlap.
    #[serde(default)]
    #[schema(example = json!({"mon": [["09:00", "12:00"], ["13:00", "17:00"]], "sat": [["22:00", "06:00"]]}))]
    pub weekly: BTreeMap<String, Vec<[String; 2]>>,
    /// Local dates on which windows starting that day do not count.
    #[serde(default)]
    #[schema(example = json!(["2026-12-25"]))]
    pub holidays: Vec<NaiveDate>,
}

/// A working window, in minutes after the local midnight of the day it belongs to.
/// `start < end <= start + 1440`; an `end` past 1440 falls on the next day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Window {
    start: u32,
    end: u32,
}

/// A validated calendar ready for arithmetic.
#[derive(Clone, Debug, PartialEq)]
pub struct Calendar {
    tz: Tz,
    /// Windows per weekday, Monday first, sorted by start.
    week: [Vec<Window>; 7],
    holidays: BTreeSet<NaiveDate>,
}

impl CalendarDef {
    /// Validates a body, reporting every fault with its path, e.g. `weekly.mon[1][0]`.
    pub fn parse(body: &Value) -> Result<Calendar, Vec<FieldError>> {
        let mut f = Faults::default();
        let calendar = read_calendar(&mut f, body);
        f.finish(calendar)
    }
}

impl Calendar {
    /// Builds a calendar from its stored form, applying the same rules as [`CalendarDef::parse`].
    pub fn from_definition(def: &CalendarDef) -> Result<Calendar, Vec<FieldError>> {
        // One reader for both paths, so a stored calendar can never be laxer than a new one.
        match serde_json::to_value(def) {
            Ok(body) => CalendarDef::parse(&body),
            Err(e) => Err(vec![FieldError {
                field: "body".into(),
                message: e.to_string(),
            }]),
        }
    }

    /// The definition in canonical form: days without windows left out, windows sorted by
    /// start, holidays sorted without repeats. Parsing it gives back an equal calendar.
    pub fn definition(&self) -> CalendarDef {
        let weekly = WEEKDAYS
            .iter()
            .zip(&self.week)
            .filter(|(_, windows)| !windows.is_empty())
            .map(|(day, windows)| {
                let pairs = windows
                    .iter()
                    .map(|w| {
                        let end = if w.end > MINUTES_PER_DAY {
                            w.end - MINUTES_PER_DAY
                        } else {
                            w.end
                        };
                        [clock(w.start), clock(end)]
                    })
                    .collect();
                (day.to_string(), pairs)
            })
            .collect();
        CalendarDef {
            time_zone: self.tz.name().to_string(),
            weekly,
            holidays: self.holidays.iter().copied().collect(),
        }
    }

    /// The calendar's time zone.
    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    /// The instant at which `business` of working time has elapsed after `start`, counting only
    /// time inside the weekly windows and skipping windows that start on a holiday.
    ///
    /// Zero (or negative) `business` gives `start` when it is working time, else the next
    /// opening. `None` when the calendar offers too little working time within
    /// [`SEARCH_HORIZON_DAYS`] of `start`: every window on a holiday, or a duration longer
    /// than the working time of ten years.
    pub fn add_business_time(
        &self,
        start: DateTime<Utc>,
        business: TimeDelta,
    ) -> Option<DateTime<Utc>> {
        let mut left = business.max(TimeDelta::zero());
        for (open, close) in self.intervals(start, self.horizon(start)) {
            let length = close - open;
            if left <= length {
                return open.checked_add_signed(left);
            }
            left -= length;
        }
        None
    }

    /// Working time between two instants, for "P% of the timeout" computations. Zero when `b`
    /// is not after `a`; working time more than [`SEARCH_HORIZON_DAYS`] after `a` is not counted.
    pub fn business_time_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> TimeDelta {
        if b <= a {
            return TimeDelta::zero();
        }
        // Windows of the day after `b` are scanned too: where clocks fall back across midnight,
        // a window of the next date can open before `b`. The loop stops at `b` anyway.
        let last = self
            .local_date(b)
            .succ_opt()
            .unwrap_or(NaiveDate::MAX)
            .min(self.horizon(a));
        let mut total = TimeDelta::zero();
        for (open, close) in self.intervals(a, last) {
            if open >= b {
                break;
            }
            total += close.min(b) - open;
        }
        total
    }

    /// The working intervals `[open, close)` in UTC, in order, cut to begin no earlier than
    /// `from`, for windows belonging to local dates up to `last`. Empty intervals (a window
    /// swallowed by a daylight-saving gap, or already over at `from`) are left out.
    ///
    /// The order holds because windows never overlap in local time and mapping a local time
    /// to "the first instant showing it or later" never goes backwards.
    fn intervals(
        &self,
        from: DateTime<Utc>,
        last: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        // A window lasts at most a day, so one that is still open at `from` started at most
        // two local dates earlier (one for the window, one for a fall-back across midnight).
        let first = self
            .local_date(from)
            .checked_sub_days(Days::new(2))
            .unwrap_or(NaiveDate::MIN);
        first
            .iter_days()
            .take_while(move |date| *date <= last)
            .filter(move |date| !self.holidays.contains(date))
            .flat_map(move |date| {
                let day = date.weekday().num_days_from_monday() as usize;
                self.week[day].iter().filter_map(move |w| {
                    let open = self.instant(date, w.start)?.max(from);
                    let close = self.instant(date, w.end)?;
                    (open < close).then_some((open, close))
                })
            })
    }

    /// The first instant at which the local clock shows `minute` minutes after midnight of
    /// `date`, or later (`minute` may run into the next day).
    fn instant(&self, date: NaiveDate, minute: u32) -> Option<DateTime<Utc>> {
        let local = date
            .and_time(NaiveTime::MIN)
            .checked_add_signed(TimeDelta::minutes(i64::from(minute)))?;
        first_instant_showing(self.tz, local)
    }

    fn local_date(&self, at: DateTime<Utc>) -> NaiveDate {
        // At the very ends of chrono's range the local date may not exist; the UTC date is
        // then as good a place as any to start a search that will find nothing.
        local_time(self.tz, at).map_or(at.date_naive(), |t| t.date())
    }

    /// The last local date whose windows a search starting at `from` may use.
    fn horizon(&self, from: DateTime<Utc>) -> NaiveDate {
        self.local_date(from)
            .checked_add_days(Days::new(SEARCH_HORIZON_DAYS))
            .unwrap_or(NaiveDate::MAX)
    }
}

/// Wall-time or calendar deadline: `calendar = None` means plain wall time. `None` when the
/// instant cannot be represented or the calendar has no working time in reach.
pub fn deadline(
    start: DateTime<Utc>,
    after: TimeDelta,
    calendar: Option<&Calendar>,
) -> Option<DateTime<Utc>> {
    match calendar {
        None => start.checked_add_signed(after),
        Some(c) => c.add_business_time(start, after),
    }
}

/// The instant at `percent`% of the way from `start` to the deadline, measured in the same time
/// as the deadline (business time with a calendar, wall time without). Percentages above 100
/// point past the deadline.
pub fn at_percent(
    start: DateTime<Utc>,
    after: TimeDelta,
    percent: u32,
    calendar: Option<&Calendar>,
) -> Option<DateTime<Utc>> {
    deadline(start, scale(after, percent)?, calendar)
}

/// `percent`% of `d`, rounded down to the nanosecond. Integer arithmetic keeps 80% of PT10H at
/// exactly 8 hours, which floating point would not promise.
fn scale(d: TimeDelta, percent: u32) -> Option<TimeDelta> {
    const NANOS: i128 = 1_000_000_000;
    let nanos = i128::from(d.num_seconds()) * NANOS + i128::from(d.subsec_nanos());
    let scaled = nanos * i128::from(percent) / 100;
    let seconds = i64::try_from(scaled.div_euclid(NANOS)).ok()?;
    let sub = u32::try_from(scaled.rem_euclid(NANOS)).ok()?;
    TimeDelta::new(seconds, sub)
}

/// The first instant at which a clock in `tz` shows `local` or later: the instant itself when
/// `local` exists once, its first occurrence when clocks fall back over it, and the end of the
/// gap when clocks spring forward over it.
fn first_instant_showing(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(t) => Some(t.to_utc()),
        MappedLocalTime::Ambiguous(a, b) => Some(a.to_utc().min(b.to_utc())),
        MappedLocalTime::None => gap_end(tz, local),
    }
}

/// The instant a daylight-saving gap containing `local` ends.
///
/// chrono-tz does not expose transitions, so this bisects UTC seconds. Every UTC offset the time
/// zone database knows lies within ±26 hours, so a clock shows an earlier time than `local` 26
/// hours before it read as UTC, and a later one 26 hours after; the only change of offset in
/// between is the gap itself, which makes "shows `local` or later" flip exactly once.
fn gap_end(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let around = local.and_utc().timestamp();
    let span = 26 * 3_600;
    let shows_local_or_later = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0)
            .and_then(|u| local_time(tz, u))
            .map_or(
                // Off the end of chrono's range, which only the very ends of time reach.
                seconds > around,
                |shown| shown >= local,
            )
    };
    let (mut before, mut after) = (around - span, around + span);
    while after - before > 1 {
        let mid = before + (after - before) / 2;
        if shows_local_or_later(mid) {
            after = mid;
        } else {
            before = mid;
        }
    }
    DateTime::from_timestamp(after, 0)
}

/// What a clock in `tz` shows at `at`; `None` only off the ends of chrono's range, where
/// `with_timezone(..).naive_local()` would panic.
fn local_time(tz: Tz, at: DateTime<Utc>) -> Option<NaiveDateTime> {
    let offset = tz.offset_from_utc_datetime(&at.naive_utc()).fix();
    at.naive_utc().checked_add_offset(offset)
}

/// `"HH:MM"` for minutes after midnight; 1440 is `"24:00"`.
fn clock(minutes: u32) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

fn read_calendar(f: &mut Faults, body: &Value) -> Option<Calendar> {
    let m = f.object(body, "")?;
    let mut allowed = vec!["time_zone", "weekly", "holidays"];
    allowed.extend_from_slice(READ_ONLY);
    f.no_unknown(m, "", &allowed);
    let tz = read_time_zone(f, m);
    let week = read_weekly(f, m);
    let holidays = read_holidays(f, m);
    Some(Calendar {
        tz: tz?,
        week: week?,
        holidays: holidays?,
    })
}

fn read_time_zone(f: &mut Faults, m: &Map<String, Value>) -> Option<Tz> {
    let name: String = f.req(m, "", "time_zone")?;
    match name.parse::<Tz>() {
        Ok(tz) => Some(tz),
        Err(_) => {
            f.push(
                "time_zone",
                format!("{name:?} is not an IANA time zone such as \"Europe/Paris\""),
            );
            None
        }
    }
}

fn read_weekly(f: &mut Faults, m: &Map<String, Value>) -> Option<[Vec<Window>; 7]> {
    let days = match m.get("weekly") {
        None | Some(Value::Null) => None,
        Some(v) => Some(f.object(v, "weekly")?),
    };
    let mut week: [Vec<Window>; 7] = Default::default();
    // Every window read, with its weekday and path, for the overlap check.
    let mut placed: Vec<(usize, Window, String)> = Vec::new();
    let mut listed = 0;
    let mut ok = true;
    for (key, windows) in days.into_iter().flatten() {
        let path = join("weekly", key);
        let Some(day) = WEEKDAYS.iter().position(|d| d == key) else {
            f.push(
                path,
                "is not a weekday: use mon, tue, wed, thu, fri, sat or sun",
            );
            ok = false;
            continue;
        };
        let items = match windows {
            Value::Null => continue,
            Value::Array(items) => items,
            _ => {
                f.push(
                    path,
                    "must be an array of [start, end] windows such as [[\"09:00\", \"17:00\"]]",
                );
                ok = false;
                continue;
            }
        };
        if items.len() > MAX_WINDOWS_PER_DAY {
            f.push(
                path,
                format!("must list at most {MAX_WINDOWS_PER_DAY} windows"),
            );
            ok = false;
            continue;
        }
        listed += items.len();
        for (i, item) in items.iter().enumerate() {
            let window_path = index(&path, i);
            match read_window(f, item, &window_path) {
                Some(w) => {
                    week[day].push(w);
                    placed.push((day, w, window_path));
                }
                None => ok = false,
            }
        }
    }
    if listed == 0 && ok {
        f.push(
            "weekly",
            "must list at least one working window: a calendar without one would never elapse",
        );
        return None;
    }
    ok &= check_overlaps(f, &placed);
    for windows in &mut week {
        windows.sort();
    }
    ok.then_some(week)
}

fn read_window(f: &mut Faults, v: &Value, path: &str) -> Option<Window> {
    let pair = match v.as_array() {
        Some(pair) if pair.len() == 2 => pair,
        _ => {
            f.push(
                path,
                "must be a [start, end] pair such as [\"09:00\", \"17:00\"]",
            );
            return None;
        }
    };
    let start = read_clock(f, &pair[0], &index(path, 0));
    let end = read_clock(f, &pair[1], &index(path, 1));
    let (start, end) = (start?, end?);
    if start == MINUTES_PER_DAY {
        f.push(
            index(path, 0),
            "24:00 can only end a window; start the window at 00:00",
        );
        return None;
    }
    if start == end {
        f.push(
            path,
            "starts and ends at the same time; a whole day is [\"00:00\", \"24:00\"]",
        );
        return None;
    }
    // An end at or before the start is on the next day; "00:00" then means the coming midnight.
    let end = if end > start {
        end
    } else {
        end + MINUTES_PER_DAY
    };
    Some(Window { start, end })
}

fn read_holidays(f: &mut Faults, m: &Map<String, Value>) -> Option<BTreeSet<NaiveDate>> {
    let items = match m.get("holidays") {
        None | Some(Value::Null) => return Some(BTreeSet::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            f.push(
                "holidays",
                "must be an array of dates such as [\"2026-12-25\"]",
            );
            return None;
        }
    };
    if items.len() > MAX_HOLIDAYS {
        f.push(
            "holidays",
            format!("must list at most {MAX_HOLIDAYS} dates"),
        );
        return None;
    }
    let mut holidays = BTreeSet::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        // The same reading as NaiveDate's serde, so the stored form reads back identically.
        match item.as_str().and_then(|s| s.parse::<NaiveDate>().ok()) {
            Some(date) => {
                holidays.insert(date);
            }
            None => {
                f.push(
                    index("holidays", i),
                    "must be a date \"YYYY-MM-DD\" such as \"2026-12-25\"",
                );
                ok = false;
            }
        }
    }
    ok.then_some(holidays)
}

/// Minutes after midnight for `"HH:MM"`, 00:00 to 24:00.
fn read_clock(f: &mut Faults, v: &Value, path: &str) -> Option<u32> {
    let parsed = v.as_str().and_then(|s| {
        let (h, m) = s.split_once(':')?;
        let two_digits = |t: &str| t.len() == 2 && t.bytes().all(|b| b.is_ascii_digit());
        if !two_digits(h) || !two_digits(m) {
            return None;
        }
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
    });
    if parsed.is_none() {
        f.push(path, "must be a time \"HH:MM\" from \"00:00\" to \"24:00\"");
    }
    parsed
}

/// Refuses windows that overlap anywhere in the week, Sunday night running into Monday included.
/// Blames the window that starts later, naming the one it runs into.
fn check_overlaps(f: &mut Faults, placed: &[(usize, Window, String)]) -> bool {
    let mut spans: Vec<(u32, u32, &str)> = placed
        .iter()
        .map(|(day, w, path)| {
            let base = *day as u32 * MINUTES_PER_DAY;
            (base + w.start, base + w.end, path.as_str())
        })
        .collect();
    spans.sort();
    let mut ok = true;
    // The window reaching furthest so far: a window overlaps an earlier one exactly when it
    // starts before that reach.
    let mut reach: Option<(u32, &str)> = None;
    for &(start, end, path) in &spans {
        if let Some((until, other)) = reach {
            if start < until {
                f.push(path, format!("overlaps {other}; windows must not overlap"));
                ok = false;
            }
            if end <= until {
                continue;
            }
        }
        reach = Some((end, path));
    }
    // Only a Sunday window crossing midnight reaches past the week; its tail is Monday morning.
    if let Some((until, sunday)) = reach
        && until > MINUTES_PER_WEEK
    {
        let tail = until - MINUTES_PER_WEEK;
        for &(_, _, path) in spans.iter().take_while(|span| span.0 < tail) {
            f.push(
                sunday,
                format!("runs into Monday and overlaps {path}; windows must not overlap"),
            );
            ok = false;
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use chrono::Timelike;
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn cal(body: Value) -> Calendar {
        CalendarDef::parse(&body).unwrap_or_else(|e| panic!("{body} should parse: {e:?}"))
    }

    fn faults(body: Value) -> Vec<(String, String)> {
        match CalendarDef::parse(&body) {
            Ok(_) => panic!("{body} should be refused"),
            Err(errors) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
        }
    }

    fn fields(body: Value) -> Vec<String> {
        let mut fields: Vec<String> = faults(body).into_iter().map(|(f, _)| f).collect();
        fields.sort();
        fields
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// An unambiguous local time, "2026-03-02 09:00", in `tz`.
    fn at(tz: Tz, s: &str) -> DateTime<Utc> {
        let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&local).single().unwrap().to_utc()
    }

    fn paris(s: &str) -> DateTime<Utc> {
        at(chrono_tz::Europe::Paris, s)
    }

    fn ny(s: &str) -> DateTime<Utc> {
        at(chrono_tz::America::New_York, s)
    }

    fn hours(n: i64) -> TimeDelta {
        TimeDelta::hours(n)
    }

    fn minutes(n: i64) -> TimeDelta {
        TimeDelta::minutes(n)
    }

    fn weekdays(windows: Value) -> Value {
        json!({"mon": windows, "tue": windows, "wed": windows, "thu": windows, "fri": windows})
    }

    /// Paris, Monday to Friday 09:00–17:00, with optional holidays.
    fn office(holidays: &[&str]) -> Calendar {
        cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": weekdays(json!([["09:00", "17:00"]])),
            "holidays": holidays,
        }))
    }

    fn one_window(tz: &str, day: &str, start: &str, end: &str) -> Calendar {
        cal(json!({"time_zone": tz, "weekly": {day: [[start, end]]}}))
    }

    /// Working time over a whole local date, midnight to midnight.
    fn working_time_on(c: &Calendar, date: &str) -> TimeDelta {
        let day: NaiveDate = date.parse().unwrap();
        let midnight =
            |d: NaiveDate| first_instant_showing(c.tz, d.and_time(NaiveTime::MIN)).unwrap();
        c.business_time_between(midnight(day), midnight(day.succ_opt().unwrap()))
    }

    // 2026-03-02 is a Monday; Paris is on CET (UTC+1) until 2026-03-29.

    #[test]
    fn same_day_deadline_inside_one_window() {
        let c = office(&[]);
        assert_eq!(
            c.add_business_time(paris("2026-03-02 10:00"), hours(3)),
            Some(paris("2026-03-02 13:00"))
        );
    }

    #[test]
    fn start_before_a_window_counts_from_its_opening() {
        let c = office(&[]);
        assert_eq!(
            c.add_business_time(paris("2026-03-02 07:00"), hours(2)),
            Some(paris("2026-03-02 11:00"))
        );
    }

    #[test]
    fn start_after_a_window_counts_from_the_next_opening() {
        let c = office(&[]);
        assert_eq!(
            c.add_business_time(paris("2026-03-02 18:00"), hours(2)),
            Some(paris("2026-03-03 11:00"))
        );
    }

    #[test]
    fn start_inside_a_window_spills_into_the_next_day() {
        let c = office(&[]);
        assert_eq!(
            c.add_business_time(paris("2026-03-02 15:00"), hours(4)),
            Some(paris("2026-03-03 11:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 09:00"), hours(40)),
            Some(paris("2026-03-06 17:00"))
        );
    }

    #[test]
    fn using_a_window_up_exactly_ends_at_its_closing_time() {
        let c = office(&[]);
        let monday = paris("2026-03-02 09:00");
        assert_eq!(
            c.add_business_time(monday, hours(8)),
            Some(paris("2026-03-02 17:00"))
        );
        assert_eq!(
            c.add_business_time(monday, hours(8) + TimeDelta::seconds(1)),
            Some(paris("2026-03-03 09:00") + TimeDelta::seconds(1))
        );
    }

    #[test]
    fn deadline_spanning_a_weekend_skips_it() {
        let c = office(&[]);
        assert_eq!(
            c.add_business_time(paris("2026-03-06 15:00"), hours(4)),
            Some(paris("2026-03-09 11:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-07 12:00"), hours(1)),
            Some(paris("2026-03-09 10:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-06 09:00"), hours(41)),
            Some(paris("2026-03-13 10:00"))
        );
    }

    #[test]
    fn holiday_on_the_start_day_is_skipped() {
        let c = office(&["2026-03-02"]);
        assert_eq!(
            c.add_business_time(paris("2026-03-02 10:00"), hours(1)),
            Some(paris("2026-03-03 10:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-01 20:00"), hours(1)),
            Some(paris("2026-03-03 10:00"))
        );
        assert_eq!(
            c.business_time_between(paris("2026-03-02 00:00"), paris("2026-03-04 00:00")),
            hours(8)
        );
    }

    #[test]
    fn consecutive_holidays_are_all_skipped() {
        // Thursday 24 and Friday 25 December 2026, then the weekend.
        let c = office(&["2026-12-24", "2026-12-25"]);
        assert_eq!(
            c.add_business_time(paris("2026-12-23 16:00"), hours(2)),
            Some(paris("2026-12-28 10:00"))
        );
        assert_eq!(
            c.business_time_between(paris("2026-12-21 00:00"), paris("2026-12-28 00:00")),
            hours(24)
        );
    }

    #[test]
    fn holiday_on_a_day_without_windows_changes_nothing() {
        let plain = office(&[]);
        let saturday_off = office(&["2026-03-07"]);
        let start = paris("2026-03-06 15:00");
        assert_eq!(
            plain.add_business_time(start, hours(4)),
            saturday_off.add_business_time(start, hours(4))
        );
    }

    #[test]
    fn several_windows_per_day_skip_the_gaps_between_them() {
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            // Listed out of order on purpose: order must not matter.
            "weekly": weekdays(json!([["13:00", "17:00"], ["09:00", "12:00"]])),
        }));
        assert_eq!(
            c.add_business_time(paris("2026-03-02 11:00"), hours(2)),
            Some(paris("2026-03-02 14:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 12:30"), hours(1)),
            Some(paris("2026-03-02 14:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 16:00"), hours(2)),
            Some(paris("2026-03-03 10:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 11:00"), hours(1)),
            Some(paris("2026-03-02 12:00"))
        );
        assert_eq!(working_time_on(&c, "2026-03-02"), hours(7));
    }

    #[test]
    fn touching_windows_behave_as_one() {
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": {"mon": [["09:00", "12:00"], ["12:00", "17:00"]]},
        }));
        assert_eq!(
            c.add_business_time(paris("2026-03-02 11:00"), hours(2)),
            Some(paris("2026-03-02 13:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 12:00"), TimeDelta::zero()),
            Some(paris("2026-03-02 12:00"))
        );
    }

    #[test]
    fn window_crossing_midnight_runs_into_the_next_day() {
        let c = one_window("Europe/Paris", "mon", "22:00", "06:00");
        assert_eq!(
            c.add_business_time(paris("2026-03-02 23:00"), hours(3)),
            Some(paris("2026-03-03 02:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-03 01:00"), hours(5)),
            Some(paris("2026-03-03 06:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-03 01:00"), hours(6)),
            Some(paris("2026-03-09 23:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 12:00"), hours(1)),
            Some(paris("2026-03-02 23:00"))
        );
        assert_eq!(
            c.business_time_between(paris("2026-03-02 00:00"), paris("2026-03-04 00:00")),
            hours(8)
        );
    }

    #[test]
    fn window_crossing_midnight_is_skipped_when_its_start_day_is_a_holiday() {
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": {"mon": [["22:00", "06:00"]]},
            "holidays": ["2026-03-02"],
        }));
        assert_eq!(
            c.add_business_time(paris("2026-03-02 21:00"), hours(1)),
            Some(paris("2026-03-09 23:00"))
        );
        // Starting inside the skipped window does not count its remainder either.
        assert_eq!(
            c.add_business_time(paris("2026-03-03 01:00"), hours(1)),
            Some(paris("2026-03-09 23:00"))
        );
    }

    #[test]
    fn holiday_on_the_day_a_night_window_ends_does_not_cut_it() {
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": {"mon": [["22:00", "06:00"]]},
            "holidays": ["2026-03-03"],
        }));
        assert_eq!(
            c.add_business_time(paris("2026-03-02 22:00"), hours(8)),
            Some(paris("2026-03-03 06:00"))
        );
    }

    #[test]
    fn end_at_midnight_is_the_coming_midnight() {
        let c = one_window("Europe/Paris", "mon", "22:00", "00:00");
        assert_eq!(
            c.add_business_time(paris("2026-03-02 23:00"), hours(1)),
            Some(paris("2026-03-03 00:00"))
        );
        assert_eq!(working_time_on(&c, "2026-03-02"), hours(2));
    }

    #[test]
    fn sunday_night_window_runs_into_monday_across_the_week_boundary() {
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": {"sun": [["20:00", "02:00"]], "mon": [["08:00", "12:00"]]},
        }));
        assert_eq!(
            c.add_business_time(paris("2026-03-01 21:00"), hours(6)),
            Some(paris("2026-03-02 09:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 01:00"), hours(1)),
            Some(paris("2026-03-02 02:00"))
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-02 01:00"), hours(2)),
            Some(paris("2026-03-02 09:00"))
        );
        // Saturday start: the week wraps to Sunday night first.
        assert_eq!(
            c.add_business_time(paris("2026-02-28 12:00"), hours(5)),
            Some(paris("2026-03-02 01:00"))
        );
        assert_eq!(
            c.business_time_between(paris("2026-03-01 00:00"), paris("2026-03-03 00:00")),
            hours(10)
        );
    }

    #[test]
    fn sunday_night_window_on_a_holiday_sunday_is_skipped() {
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": {"sun": [["20:00", "02:00"]], "mon": [["08:00", "12:00"]]},
            "holidays": ["2026-03-01"],
        }));
        assert_eq!(
            c.add_business_time(paris("2026-03-01 21:00"), hours(1)),
            Some(paris("2026-03-02 09:00"))
        );
    }

    // Europe/Paris 2026: clocks go 02:00 CET -> 03:00 CEST on Sunday 29 March (01:00 UTC) and
    // 03:00 CEST -> 02:00 CET on Sunday 25 October (01:00 UTC).

    #[test]
    fn paris_spring_forward_keeps_office_hours_whole() {
        let c = one_window("Europe/Paris", "sun", "09:00", "17:00");
        assert_eq!(working_time_on(&c, "2026-03-29"), hours(8));
        assert_eq!(
            c.add_business_time(paris("2026-03-29 09:00"), hours(8)),
            Some(utc("2026-03-29T15:00:00Z"))
        );
    }

    #[test]
    fn paris_spring_forward_shortens_a_window_spanning_the_gap() {
        let c = one_window("Europe/Paris", "sun", "01:00", "04:00");
        assert_eq!(working_time_on(&c, "2026-03-22"), hours(3));
        assert_eq!(working_time_on(&c, "2026-03-29"), hours(2));
        let opening = utc("2026-03-29T00:00:00Z"); // 01:00 CET
        assert_eq!(paris("2026-03-29 01:00"), opening);
        assert_eq!(
            c.add_business_time(opening, hours(1)),
            Some(utc("2026-03-29T01:00:00Z")) // 03:00 CEST, straight after 01:59:59 CET
        );
        assert_eq!(
            c.add_business_time(opening, hours(2)),
            Some(utc("2026-03-29T02:00:00Z")) // 04:00 CEST, the closing time
        );
    }

    #[test]
    fn paris_spring_forward_time_inside_the_gap_means_the_end_of_the_gap() {
        let c = one_window("Europe/Paris", "sun", "02:30", "05:00");
        assert_eq!(working_time_on(&c, "2026-03-29"), hours(2));
        assert_eq!(
            c.add_business_time(paris("2026-03-29 00:00"), TimeDelta::zero()),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn paris_spring_forward_window_wholly_inside_the_gap_is_empty_that_day() {
        let c = one_window("Europe/Paris", "sun", "02:15", "02:45");
        assert_eq!(working_time_on(&c, "2026-03-22"), minutes(30));
        assert_eq!(working_time_on(&c, "2026-03-29"), TimeDelta::zero());
        assert_eq!(
            c.add_business_time(paris("2026-03-28 12:00"), TimeDelta::zero()),
            Some(paris("2026-04-05 02:15"))
        );
    }

    #[test]
    fn paris_spring_forward_night_window_loses_an_hour() {
        let c = one_window("Europe/Paris", "sat", "22:00", "06:00");
        assert_eq!(
            c.business_time_between(paris("2026-03-28 12:00"), paris("2026-03-29 12:00")),
            hours(7)
        );
        assert_eq!(
            c.add_business_time(paris("2026-03-28 22:00"), hours(7)),
            Some(utc("2026-03-29T04:00:00Z")) // 06:00 CEST
        );
    }

    #[test]
    fn paris_fall_back_keeps_office_hours_whole() {
        let c = one_window("Europe/Paris", "sun", "09:00", "17:00");
        assert_eq!(working_time_on(&c, "2026-10-25"), hours(8));
        assert_eq!(
            c.add_business_time(paris("2026-10-25 09:00"), hours(8)),
            Some(utc("2026-10-25T16:00:00Z"))
        );
    }

    #[test]
    fn paris_fall_back_lengthens_a_window_spanning_the_repeated_hour() {
        let c = one_window("Europe/Paris", "sun", "01:00", "04:00");
        assert_eq!(working_time_on(&c, "2026-10-25"), hours(4));
        let opening = utc("2026-10-24T23:00:00Z"); // 01:00 CEST
        assert_eq!(
            c.add_business_time(opening, hours(2)),
            Some(utc("2026-10-25T01:00:00Z")) // the second 02:00, now CET
        );
        assert_eq!(
            c.add_business_time(opening, hours(4)),
            Some(utc("2026-10-25T03:00:00Z")) // 04:00 CET
        );
    }

    #[test]
    fn paris_fall_back_repeated_time_means_its_first_occurrence() {
        let from_repeated = one_window("Europe/Paris", "sun", "02:30", "05:00");
        assert_eq!(
            working_time_on(&from_repeated, "2026-10-25"),
            hours(3) + minutes(30)
        );
        assert_eq!(
            from_repeated.add_business_time(paris("2026-10-25 00:00"), TimeDelta::zero()),
            Some(utc("2026-10-25T00:30:00Z")) // 02:30 CEST
        );
        let to_repeated = one_window("Europe/Paris", "sun", "00:00", "02:30");
        assert_eq!(
            working_time_on(&to_repeated, "2026-10-25"),
            hours(2) + minutes(30)
        );
    }

    #[test]
    fn paris_fall_back_night_window_gains_an_hour() {
        let c = one_window("Europe/Paris", "sat", "22:00", "06:00");
        assert_eq!(
            c.business_time_between(paris("2026-10-24 12:00"), paris("2026-10-25 12:00")),
            hours(9)
        );
        assert_eq!(
            c.add_business_time(paris("2026-10-24 22:00"), hours(9)),
            Some(utc("2026-10-25T05:00:00Z")) // 06:00 CET
        );
    }

    // America/New_York 2026: 02:00 EST -> 03:00 EDT on Sunday 8 March (07:00 UTC) and
    // 02:00 EDT -> 01:00 EST on Sunday 1 November (06:00 UTC).

    #[test]
    fn new_york_spring_forward() {
        let whole_day = one_window("America/New_York", "sun", "00:00", "24:00");
        assert_eq!(working_time_on(&whole_day, "2026-03-01"), hours(24));
        assert_eq!(working_time_on(&whole_day, "2026-03-08"), hours(23));
        let office = one_window("America/New_York", "sun", "09:00", "17:00");
        assert_eq!(working_time_on(&office, "2026-03-08"), hours(8));
        assert_eq!(
            office.add_business_time(ny("2026-03-08 09:00"), hours(8)),
            Some(utc("2026-03-08T21:00:00Z"))
        );
        let into_gap = one_window("America/New_York", "sun", "01:30", "02:30");
        assert_eq!(working_time_on(&into_gap, "2026-03-08"), minutes(30));
        assert_eq!(
            into_gap.add_business_time(ny("2026-03-08 01:30"), minutes(30)),
            Some(utc("2026-03-08T07:00:00Z")) // 03:00 EDT
        );
    }

    #[test]
    fn new_york_fall_back() {
        let whole_day = one_window("America/New_York", "sun", "00:00", "24:00");
        assert_eq!(working_time_on(&whole_day, "2026-11-01"), hours(25));
        let office = one_window("America/New_York", "sun", "09:00", "17:00");
        assert_eq!(working_time_on(&office, "2026-11-01"), hours(8));
        assert_eq!(
            office.add_business_time(ny("2026-11-01 09:00"), hours(8)),
            Some(utc("2026-11-01T22:00:00Z"))
        );
        let over_repeat = one_window("America/New_York", "sun", "01:30", "02:30");
        assert_eq!(working_time_on(&over_repeat, "2026-11-01"), hours(2));
        let opening = utc("2026-11-01T05:30:00Z"); // the first 01:30, EDT
        assert_eq!(
            over_repeat.add_business_time(opening - hours(1), TimeDelta::zero()),
            Some(opening)
        );
        assert_eq!(
            over_repeat.add_business_time(opening, hours(1)),
            Some(utc("2026-11-01T06:30:00Z")) // the second 01:30, EST
        );
    }

    #[test]
    fn zero_duration_is_start_when_working_else_the_next_opening() {
        let c = office(&["2026-03-09"]);
        for (start, expected) in [
            ("2026-03-02 10:00", "2026-03-02 10:00"),
            ("2026-03-02 09:00", "2026-03-02 09:00"),
            ("2026-03-02 07:00", "2026-03-02 09:00"),
            // The closing instant is not working time.
            ("2026-03-02 17:00", "2026-03-03 09:00"),
            ("2026-03-07 12:00", "2026-03-10 09:00"),
        ] {
            assert_eq!(
                c.add_business_time(paris(start), TimeDelta::zero()),
                Some(paris(expected)),
                "from {start}"
            );
        }
    }

    #[test]
    fn negative_duration_counts_as_zero() {
        let c = office(&[]);
        assert_eq!(
            c.add_business_time(paris("2026-03-02 07:00"), hours(-5)),
            Some(paris("2026-03-02 09:00"))
        );
    }

    #[test]
    fn business_time_between_counts_only_windows() {
        let c = office(&[]);
        let monday = paris("2026-03-02 00:00");
        assert_eq!(
            c.business_time_between(monday, paris("2026-03-09 00:00")),
            hours(40)
        );
        assert_eq!(
            c.business_time_between(paris("2026-03-02 16:00"), paris("2026-03-03 10:00")),
            hours(2)
        );
        assert_eq!(
            c.business_time_between(paris("2026-03-02 10:00"), paris("2026-03-02 10:30")),
            minutes(30)
        );
        assert_eq!(c.business_time_between(monday, monday), TimeDelta::zero());
        assert_eq!(
            c.business_time_between(paris("2026-03-03 00:00"), monday),
            TimeDelta::zero()
        );
    }

    #[test]
    fn business_time_between_stops_at_the_horizon() {
        let c = office(&[]);
        let start = paris("2026-03-02 00:00");
        let horizon_end =
            start.with_timezone(&c.tz).date_naive() + Days::new(SEARCH_HORIZON_DAYS + 1);
        let horizon_end = first_instant_showing(c.tz, horizon_end.and_time(NaiveTime::MIN));
        let counted = c.business_time_between(start, horizon_end.unwrap());
        assert!(counted > hours(8 * 5 * 52 * 9), "{counted}");
        assert_eq!(
            c.business_time_between(start, DateTime::<Utc>::MAX_UTC),
            counted
        );
    }

    #[test]
    fn the_ends_of_time_give_answers_not_panics() {
        let c = cal(json!({
            "time_zone": "Pacific/Kiritimati",
            "weekly": {"mon": [["09:00", "17:00"]], "sun": [["20:00", "02:00"]]},
        }));
        let west = one_window("Pacific/Pago_Pago", "sat", "22:00", "06:00");
        for c in [&c, &west] {
            for at in [DateTime::<Utc>::MAX_UTC, DateTime::<Utc>::MIN_UTC] {
                let _ = c.add_business_time(at, hours(1));
                let _ = c.add_business_time(at, TimeDelta::zero());
                let _ = c.business_time_between(at, DateTime::<Utc>::MAX_UTC);
                let _ = at_percent(at, hours(10), 80, Some(c));
                let _ = at_percent(at, TimeDelta::MAX, u32::MAX, None);
            }
            assert_eq!(
                c.add_business_time(DateTime::<Utc>::MAX_UTC - hours(30), hours(1)),
                None
            );
        }
    }

    #[test]
    fn at_percent_of_a_business_timeout() {
        let c = office(&[]);
        let ten_hours = hours(10);
        let monday_ten = paris("2026-03-02 10:00");
        assert_eq!(
            at_percent(monday_ten, ten_hours, 80, Some(&c)),
            Some(paris("2026-03-03 10:00"))
        );
        let monday_nine = paris("2026-03-02 09:00");
        assert_eq!(
            at_percent(monday_nine, ten_hours, 80, Some(&c)),
            Some(paris("2026-03-02 17:00"))
        );
        assert_eq!(
            at_percent(monday_nine, ten_hours, 100, Some(&c)),
            deadline(monday_nine, ten_hours, Some(&c))
        );
        assert_eq!(
            deadline(monday_nine, ten_hours, Some(&c)),
            Some(paris("2026-03-03 11:00"))
        );
        assert_eq!(
            at_percent(monday_nine, ten_hours, 0, Some(&c)),
            Some(monday_nine)
        );
        assert_eq!(
            at_percent(monday_nine, ten_hours, 150, Some(&c)),
            Some(paris("2026-03-03 16:00"))
        );
    }

    #[test]
    fn at_percent_of_a_wall_time_timeout() {
        let start = utc("2026-03-02T10:00:00Z");
        assert_eq!(
            at_percent(start, hours(10), 80, None),
            Some(utc("2026-03-02T18:00:00Z"))
        );
        assert_eq!(
            at_percent(start, TimeDelta::seconds(1), 50, None),
            Some(start + TimeDelta::milliseconds(500))
        );
        assert_eq!(
            at_percent(start, TimeDelta::seconds(10), 33, None),
            Some(start + TimeDelta::milliseconds(3_300))
        );
        assert_eq!(at_percent(start, hours(10), 0, None), Some(start));
    }

    #[test]
    fn wall_time_deadline_ignores_calendars_and_reports_overflow() {
        let start = utc("2026-03-07T12:00:00Z"); // a Saturday
        assert_eq!(
            deadline(start, hours(48), None),
            Some(utc("2026-03-09T12:00:00Z"))
        );
        assert_eq!(deadline(start, TimeDelta::zero(), None), Some(start));
        assert_eq!(deadline(DateTime::<Utc>::MAX_UTC, hours(1), None), None);
    }

    #[test]
    fn long_business_deadline_is_exact() {
        // 2000 hours of 8-hour days is 250 working days: 50 weeks from Monday 5 January.
        let c = office(&[]);
        assert_eq!(
            c.add_business_time(paris("2026-01-05 09:00"), hours(2_000)),
            Some(paris("2026-12-18 17:00"))
        );
    }

    #[test]
    fn no_working_time_within_ten_years_gives_none() {
        let mondays: Vec<String> = NaiveDate::from_ymd_opt(2026, 1, 5)
            .unwrap()
            .iter_weeks()
            .take(52 * 11)
            .map(|d| d.to_string())
            .collect();
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": {"mon": [["09:00", "17:00"]]},
            "holidays": mondays,
        }));
        assert_eq!(
            c.add_business_time(paris("2026-01-01 00:00"), hours(1)),
            None
        );
        assert_eq!(
            c.add_business_time(paris("2026-01-01 00:00"), TimeDelta::zero()),
            None
        );
        assert_eq!(
            deadline(paris("2026-01-01 00:00"), hours(1), Some(&c)),
            None
        );
    }

    #[test]
    fn working_time_nine_years_away_is_still_found() {
        let mondays: Vec<String> = NaiveDate::from_ymd_opt(2026, 1, 5)
            .unwrap()
            .iter_weeks()
            .take(52 * 9)
            .map(|d| d.to_string())
            .collect();
        let first_free = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap() + Days::new(7 * 52 * 9);
        let c = cal(json!({
            "time_zone": "Europe/Paris",
            "weekly": {"mon": [["09:00", "17:00"]]},
            "holidays": mondays,
        }));
        assert_eq!(
            c.add_business_time(paris("2026-01-01 00:00"), hours(1)),
            Some(paris(&format!("{first_free} 10:00")))
        );
    }

    // Validation.

    #[test]
    fn minimal_calendar_parses() {
        let c = cal(json!({"time_zone": "UTC", "weekly": {"wed": [["00:00", "24:00"]]}}));
        assert_eq!(c.time_zone(), chrono_tz::UTC);
        assert_eq!(working_time_on(&c, "2026-03-04"), hours(24));
    }

    #[test]
    fn body_must_be_an_object() {
        assert_eq!(fields(json!([1, 2])), ["body"]);
    }

    #[test]
    fn unknown_fields_are_refused_and_read_only_ones_ignored() {
        assert_eq!(
            fields(json!({"timezone": "UTC", "weekly": {"mon": [["09:00", "17:00"]]}})),
            ["time_zone", "timezone"]
        );
        cal(json!({
            "id": "paris-office", "updated_at": "2026-01-01T00:00:00Z",
            "time_zone": "UTC", "weekly": {"mon": [["09:00", "17:00"]]},
        }));
    }

    #[test]
    fn unknown_time_zone_is_refused() {
        let body = |tz: Value| json!({"time_zone": tz, "weekly": {"mon": [["09:00", "17:00"]]}});
        for bad in [json!("Europe/Pariss"), json!("CEST+2"), json!(""), json!(3)] {
            assert_eq!(fields(body(bad.clone())), ["time_zone"], "{bad}");
        }
        assert_eq!(
            fields(json!({"weekly": {"mon": [["09:00", "17:00"]]}})),
            ["time_zone"]
        );
    }

    #[test]
    fn weekday_keys_other_than_mon_to_sun_are_refused() {
        let found = faults(json!({
            "time_zone": "UTC",
            "weekly": {"mon": [["09:00", "17:00"]], "monday": [["09:00", "17:00"]], "Tue": []},
        }));
        let mut paths: Vec<&str> = found.iter().map(|(f, _)| f.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["weekly.Tue", "weekly.monday"]);
        assert!(found[0].1.contains("mon, tue"), "{found:?}");
    }

    #[test]
    fn weekly_shapes_are_checked() {
        assert_eq!(
            fields(json!({"time_zone": "UTC", "weekly": []})),
            ["weekly"]
        );
        assert_eq!(
            fields(json!({"time_zone": "UTC", "weekly": {"mon": "09:00-17:00"}})),
            ["weekly.mon"]
        );
        assert_eq!(
            fields(
                json!({"time_zone": "UTC", "weekly": {"mon": [["09:00"], "09:00-17:00", ["09:00", "12:00", "17:00"]]}})
            ),
            ["weekly.mon[0]", "weekly.mon[1]", "weekly.mon[2]"]
        );
        let many: Vec<Value> = (0..49)
            .map(|h| json!([clock(h * 20), clock(h * 20 + 10)]))
            .collect();
        assert_eq!(
            fields(json!({"time_zone": "UTC", "weekly": {"mon": many}})),
            ["weekly.mon"]
        );
    }

    #[test]
    fn malformed_times_are_refused_with_their_path() {
        for bad in [
            json!("9:00"),
            json!("09:60"),
            json!("24:01"),
            json!("25:00"),
            json!("09:00:00"),
            json!(" 09:00"),
            json!("0900"),
            json!("+9:00"),
            json!(900),
        ] {
            let found = faults(json!({
                "time_zone": "UTC",
                "weekly": {"mon": [["08:00", "08:30"], [bad, "17:00"]]},
            }));
            assert_eq!(found.len(), 1, "{bad}: {found:?}");
            assert_eq!(found[0].0, "weekly.mon[1][0]", "{bad}");
            assert!(found[0].1.contains("HH:MM"), "{found:?}");
        }
        assert_eq!(
            fields(json!({"time_zone": "UTC", "weekly": {"fri": [["09:00", "7pm"]]}})),
            ["weekly.fri[0][1]"]
        );
    }

    #[test]
    fn twenty_four_hundred_only_ends_a_window() {
        assert_eq!(
            fields(json!({"time_zone": "UTC", "weekly": {"mon": [["24:00", "06:00"]]}})),
            ["weekly.mon[0][0]"]
        );
        cal(json!({"time_zone": "UTC", "weekly": {"mon": [["18:00", "24:00"]]}}));
    }

    #[test]
    fn equal_start_and_end_is_refused() {
        for (start, end) in [("09:00", "09:00"), ("00:00", "00:00")] {
            let found = faults(json!({"time_zone": "UTC", "weekly": {"tue": [[start, end]]}}));
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].0, "weekly.tue[0]");
            assert!(found[0].1.contains("same time"), "{found:?}");
        }
    }

    #[test]
    fn overlapping_windows_in_a_day_are_refused() {
        let found = faults(json!({
            "time_zone": "UTC",
            "weekly": {"mon": [["09:00", "12:00"], ["11:00", "17:00"]]},
        }));
        assert_eq!(
            found,
            [(
                "weekly.mon[1]".to_string(),
                "overlaps weekly.mon[0]; windows must not overlap".to_string()
            )]
        );
        // A window inside another, listed first.
        assert_eq!(
            fields(
                json!({"time_zone": "UTC", "weekly": {"mon": [["10:00", "11:00"], ["09:00", "17:00"]]}})
            ),
            ["weekly.mon[0]"]
        );
        // Two later windows both inside an earlier long one.
        assert_eq!(
            fields(
                json!({"time_zone": "UTC", "weekly": {"mon": [["08:00", "18:00"], ["09:00", "10:00"], ["11:00", "12:00"]]}})
            ),
            ["weekly.mon[1]", "weekly.mon[2]"]
        );
    }

    #[test]
    fn night_window_overlapping_the_next_morning_is_refused() {
        let found = faults(json!({
            "time_zone": "UTC",
            "weekly": {"mon": [["22:00", "06:00"]], "tue": [["05:00", "09:00"]]},
        }));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "weekly.tue[0]");
        assert!(found[0].1.contains("weekly.mon[0]"), "{found:?}");
        cal(json!({
            "time_zone": "UTC",
            "weekly": {"mon": [["22:00", "06:00"]], "tue": [["06:00", "09:00"]]},
        }));
    }

    #[test]
    fn sunday_night_window_overlapping_monday_morning_is_refused() {
        let found = faults(json!({
            "time_zone": "UTC",
            "weekly": {"sun": [["22:00", "06:00"]], "mon": [["05:00", "09:00"]]},
        }));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0, "weekly.sun[0]");
        assert!(found[0].1.contains("overlaps weekly.mon[0]"), "{found:?}");
        cal(json!({
            "time_zone": "UTC",
            "weekly": {"sun": [["22:00", "06:00"]], "mon": [["06:00", "09:00"]]},
        }));
    }

    #[test]
    fn calendar_without_any_window_is_refused() {
        for weekly in [
            json!({}),
            json!({"sat": []}),
            json!({"sun": null}),
            json!(null),
        ] {
            let found = faults(json!({"time_zone": "UTC", "weekly": weekly}));
            assert_eq!(found.len(), 1, "{weekly}");
            assert_eq!(found[0].0, "weekly");
            assert!(found[0].1.contains("never elapse"), "{found:?}");
        }
        assert_eq!(fields(json!({"time_zone": "UTC"})), ["weekly"]);
    }

    #[test]
    fn malformed_holidays_are_refused_with_their_path() {
        assert_eq!(
            fields(json!({
                "time_zone": "UTC",
                "weekly": {"mon": [["09:00", "17:00"]]},
                "holidays": ["2026-12-25", "25/12/2026", 3, "2026-02-30", null],
            })),
            ["holidays[1]", "holidays[2]", "holidays[3]", "holidays[4]"]
        );
        assert_eq!(
            fields(
                json!({"time_zone": "UTC", "weekly": {"mon": [["09:00", "17:00"]]}, "holidays": "2026-12-25"})
            ),
            ["holidays"]
        );
    }

    #[test]
    fn every_fault_is_reported_at_once() {
        assert_eq!(
            fields(json!({
                "time_zone": "Mars/Olympus",
                "weekly": {"mon": [["09:00", "17:00"], ["16:00", "18:00"]], "xyz": [], "tue": [["9", "10:00"]]},
                "holidays": ["soon"],
                "colour": "blue",
            })),
            [
                "colour",
                "holidays[0]",
                "time_zone",
                "weekly.mon[1]",
                "weekly.tue[0][0]",
                "weekly.xyz",
            ]
        );
    }

    // Round trips.

    #[test]
    fn canonical_definition_round_trips_exactly() {
        let body = json!({
            "time_zone": "Europe/Paris",
            "weekly": {
                "mon": [["09:00", "12:00"], ["13:00", "17:00"]],
                "fri": [["09:00", "24:00"]],
                "sun": [["22:00", "06:00"]],
            },
            "holidays": ["2026-05-01", "2026-12-25"],
        });
        let def: CalendarDef = serde_json::from_value(body.clone()).unwrap();
        let c = cal(body.clone());
        assert_eq!(c.definition(), def);
        assert_eq!(serde_json::to_value(c.definition()).unwrap(), body);
        assert_eq!(Calendar::from_definition(&def), Ok(c));
    }

    #[test]
    fn definition_is_canonical() {
        let c = cal(json!({
            "time_zone": "America/New_York",
            "weekly": {
                "tue": [["13:00", "17:00"], ["08:00", "12:00"]],
                "wed": [["22:00", "00:00"]],
                "sat": [],
            },
            "holidays": ["2026-12-25", "2026-07-03", "2026-12-25"],
        }));
        let def = c.definition();
        assert_eq!(
            serde_json::to_value(&def).unwrap(),
            json!({
                "time_zone": "America/New_York",
                "weekly": {
                    "tue": [["08:00", "12:00"], ["13:00", "17:00"]],
                    "wed": [["22:00", "24:00"]],
                },
                "holidays": ["2026-07-03", "2026-12-25"],
            })
        );
        assert_eq!(Calendar::from_definition(&def), Ok(c));
    }

    #[test]
    fn stored_definition_is_checked_like_a_new_one() {
        let def = CalendarDef {
            time_zone: "Europe/Paris".into(),
            weekly: BTreeMap::from([(
                "mon".to_string(),
                vec![
                    ["09:00".to_string(), "12:00".to_string()],
                    ["11:00".to_string(), "17:00".to_string()],
                ],
            )]),
            holidays: vec![],
        };
        let errors = Calendar::from_definition(&def).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "weekly.mon[1]");
    }

    #[test]
    fn definition_defaults_missing_lists_when_deserialized() {
        let def: CalendarDef = serde_json::from_value(json!({"time_zone": "UTC"})).unwrap();
        assert!(def.weekly.is_empty() && def.holidays.is_empty());
    }

    // Properties.

    /// Calendars for the properties. The first four keep every window end clear of
    /// daylight-saving gaps and repeats, so a wall-clock reading of the windows (the oracle
    /// below) must agree with the arithmetic; the last puts ends inside them on purpose.
    static CALENDARS: LazyLock<Vec<Calendar>> = LazyLock::new(|| {
        vec![
            cal(json!({
                "time_zone": "Europe/Paris",
                "weekly": weekdays(json!([["09:00", "12:00"], ["13:00", "17:00"]])),
                "holidays": ["2025-12-25", "2026-01-01", "2026-05-01", "2026-05-08",
                             "2026-12-24", "2026-12-25", "2027-01-01"],
            })),
            cal(json!({
                "time_zone": "America/New_York",
                "weekly": {"sat": [["22:00", "06:00"]], "sun": [["10:00", "14:00"]],
                           "wed": [["00:00", "24:00"]]},
                "holidays": ["2026-03-07", "2026-07-04", "2026-11-04"],
            })),
            cal(json!({
                "time_zone": "Asia/Kolkata",
                "weekly": weekdays(json!([["08:30", "17:45"]])),
            })),
            cal(json!({
                "time_zone": "Europe/Paris",
                "weekly": {"sun": [["20:00", "02:00"]], "mon": [["08:00", "12:00"]],
                           "thu": [["23:30", "23:45"]]},
                "holidays": ["2026-03-01", "2026-03-09"],
            })),
            cal(json!({
                "time_zone": "Europe/Paris",
                "weekly": {"sun": [["00:30", "02:15"], ["02:45", "04:00"]],
                           "sat": [["02:30", "02:40"]], "tue": [["09:00", "17:00"]]},
            })),
        ]
    });
    const ORACLE_CALENDARS: usize = 4;

    /// Is `u` working time when the windows are read off a wall clock?
    fn working_by_the_clock(c: &Calendar, u: DateTime<Utc>) -> bool {
        let local = u.with_timezone(&c.tz).naive_local();
        let minute = local.time().num_seconds_from_midnight() / 60;
        let today = local.date();
        [
            (today, minute),
            (today.pred_opt().unwrap(), minute + MINUTES_PER_DAY),
        ]
        .into_iter()
        .any(|(date, m)| {
            !c.holidays.contains(&date)
                && c.week[date.weekday().num_days_from_monday() as usize]
                    .iter()
                    .any(|w| w.start <= m && m < w.end)
        })
    }

    /// Seconds from 2025 to 2029, or within three days of a daylight-saving change.
    fn instants() -> impl Strategy<Value = DateTime<Utc>> {
        let changes = [
            "2026-03-08T07:00:00Z",
            "2026-03-29T01:00:00Z",
            "2026-10-25T01:00:00Z",
            "2026-11-01T06:00:00Z",
            "2027-03-28T01:00:00Z",
        ]
        .map(|s| utc(s).timestamp());
        let near_change = (
            proptest::sample::select(changes.to_vec()),
            -259_200i64..259_200,
        )
            .prop_map(|(t, d)| t + d);
        prop_oneof![1_735_689_600i64..1_861_920_000, near_change]
            .prop_map(|t| DateTime::from_timestamp(t, 0).unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn business_time_between_undoes_add_business_time(
            which in 0..5usize,
            start in instants(),
            seconds in prop_oneof![0i64..86_400, 0i64..(45 * 86_400)],
        ) {
            let c = &CALENDARS[which];
            let d = TimeDelta::seconds(seconds);
            let end = c.add_business_time(start, d).unwrap();
            prop_assert!(end >= start);
            prop_assert_eq!(c.business_time_between(start, end), d);
        }

        #[test]
        fn adding_in_two_steps_equals_adding_at_once(
            which in 0..5usize,
            start in instants(),
            first in 0i64..(10 * 86_400),
            second in 1i64..(10 * 86_400),
        ) {
            let c = &CALENDARS[which];
            let (first, second) = (TimeDelta::seconds(first), TimeDelta::seconds(second));
            let midway = c.add_business_time(start, first).unwrap();
            prop_assert_eq!(
                c.add_business_time(midway, second),
                c.add_business_time(start, first + second)
            );
            prop_assert!(midway <= c.add_business_time(start, first + second).unwrap());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Minute by minute, the slow way, against window by window.
        #[test]
        fn business_time_between_matches_a_wall_clock_count(
            which in 0..ORACLE_CALENDARS,
            start in instants(),
            span_minutes in 0i64..(4 * 1_440),
        ) {
            let c = &CALENDARS[which];
            let a = start - TimeDelta::seconds(start.timestamp().rem_euclid(60));
            let b = a + minutes(span_minutes);
            let counted = (0..span_minutes)
                .filter(|m| working_by_the_clock(c, a + minutes(*m)))
                .count() as i64;
            prop_assert_eq!(c.business_time_between(a, b), minutes(counted));
            // A deadline lands just after working time, never in the middle of a break.
            if counted > 0 {
                let end = c.add_business_time(a, minutes(counted)).unwrap();
                prop_assert!(working_by_the_clock(c, end - minutes(1)));
                prop_assert!(end <= b);
            }
        }
    }
}
