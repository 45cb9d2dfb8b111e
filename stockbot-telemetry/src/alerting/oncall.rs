//! On-call rotations compiled into Alertmanager time intervals and routes.
//!
//! A rotation hands over every day or every week at a local time in its time zone; its shifts
//! (with overrides carved out) are listed, day by day, as one time interval per member over
//! the stated horizon, each with the rotation's `location`. Under the team's page route (or
//! an escalation tier's), one child route per member is active only in that member's
//! interval (`continue: true`, so the next one is tried), and a last child — the team's page
//! receiver — is muted while anyone is on call: it gets the pages of a gap, or after the
//! horizon (time to regenerate).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::collect::clock::{civil_from_days, days_from_civil};
use crate::error::Error;

/// A rotation of on-call duty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Rotation {
    /// `[a-z0-9-]+`; part of the time interval names.
    pub name: String,
    /// The team whose pages it takes.
    pub team: String,
    /// 1: the on-call engineer (tier 1 pages); 2, 3, …: an escalation tier. Default 1.
    #[serde(default = "Rotation::first_tier")]
    pub tier: usize,
    /// Receiver names, in rotation order.
    pub members: Vec<String>,
    /// `daily` or `weekly`.
    pub shift: Shift,
    /// Local hand-over time, `HH:MM`.
    pub handover: String,
    /// Date (`YYYY-MM-DD`, local) of the first hand-over: `members[0]` starts then.
    pub start: String,
    /// IANA time zone of the hand-over (`Europe/London`, `America/New_York`, `UTC`).
    pub time_zone: String,
    /// Someone else takes over for a while (holidays, swaps).
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// How long a shift lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shift {
    /// One day, hand-over to hand-over.
    Daily,
    /// Seven days.
    Weekly,
}

/// `member` is on call from `from` to `to` (local times `YYYY-MM-DD HH:MM` in the
/// rotation's time zone), whoever the rotation says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Override {
    /// A receiver name.
    pub member: String,
    /// Start, local.
    pub from: String,
    /// End, local (exclusive).
    pub to: String,
}

impl Rotation {
    fn first_tier() -> usize {
        1
    }

    /// A rotation of `members` with no overrides.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: impl Into<String>,
        team: impl Into<String>,
        members: Vec<String>,
        shift: Shift,
        handover: impl Into<String>,
        start: impl Into<String>,
        time_zone: impl Into<String>,
    ) -> Self {
        Rotation {
            name: name.into(),
            team: team.into(),
            tier: 1,
            members,
            shift,
            handover: handover.into(),
            start: start.into(),
            time_zone: time_zone.into(),
            overrides: Vec::new(),
        }
    }
}

impl Override {
    /// `member` on call from `from` to `to` (local `YYYY-MM-DD HH:MM`).
    pub fn new(member: impl Into<String>, from: impl Into<String>, to: impl Into<String>) -> Self {
        Override {
            member: member.into(),
            from: from.into(),
            to: to.into(),
        }
    }
}

/// Local minutes since 1970-01-01 00:00 of `YYYY-MM-DD`.
pub(super) fn parse_date(s: &str) -> Option<i64> {
    let mut p = s.splitn(3, '-');
    let (y, m, d): (i64, u32, u32) = (
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
        p.next()?.parse().ok()?,
    );
    if s.len() != 10 || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // 31 February is not a date.
    (civil_from_days(days) == (y, m, d)).then_some(days * 1440)
}

/// Minutes of `HH:MM`.
fn parse_time(s: &str) -> Option<i64> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (s.len() == 5 && (0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// Local minutes of `YYYY-MM-DD HH:MM`.
fn parse_local(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(' ')?;
    Some(parse_date(date)? + parse_time(time)?)
}

fn bad(field: String, value: impl std::fmt::Display, reason: &str) -> Error {
    Error::invalid(field, value, reason.to_owned())
}

/// Checks rotations against the declared receivers and teams (tiers each team routes).
pub(super) fn validate(
    rotations: &[Rotation],
    receivers: &[&str],
    teams: &BTreeMap<&str, usize>,
    schedule_from: Option<&str>,
    weeks: u32,
) -> Result<(), Error> {
    if rotations.is_empty() {
        return Ok(());
    }
    match schedule_from {
        Some(s) if parse_date(s).is_some() => {}
        other => {
            return Err(bad(
                "schedule_from".into(),
                other.unwrap_or("<unset>"),
                "rotations need the first date of the schedule, YYYY-MM-DD",
            ));
        }
    }
    if !(1..=104).contains(&weeks) {
        return Err(bad(
            "schedule_weeks".into(),
            weeks,
            "must be between 1 and 104",
        ));
    }
    let mut seen = BTreeMap::new();
    for (i, r) in rotations.iter().enumerate() {
        let f = format!("rotation[{i}]");
        let name_ok = !r.name.is_empty()
            && r.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !name_ok {
            return Err(bad(format!("{f}.name"), &r.name, "must match [a-z0-9-]+"));
        }
        let Some(&tiers) = teams.get(r.team.as_str()) else {
            return Err(bad(format!("{f}.team"), &r.team, "has no team route"));
        };
        if r.tier == 0 || r.tier > tiers {
            return Err(bad(
                format!("{f}.tier"),
                r.tier,
                &format!(
                    "must be between 1 and {tiers} (the tiers team {} routes)",
                    r.team
                ),
            ));
        }
        if let Some(other) = seen.insert((r.team.as_str(), r.tier), r.name.as_str()) {
            return Err(bad(
                format!("{f}.name"),
                &r.name,
                &format!(
                    "overlaps rotation {other}: both take tier {} of team {}",
                    r.tier, r.team
                ),
            ));
        }
        if r.members.is_empty() {
            return Err(bad(
                format!("{f}.members"),
                "[]",
                "a rotation needs members",
            ));
        }
        for (j, m) in r.members.iter().enumerate() {
            if !receivers.contains(&m.as_str()) {
                return Err(bad(
                    format!("{f}.members[{j}]"),
                    m,
                    "is not a declared receiver",
                ));
            }
        }
        if parse_time(&r.handover).is_none() {
            return Err(bad(format!("{f}.handover"), &r.handover, "must be HH:MM"));
        }
        if parse_date(&r.start).is_none() {
            return Err(bad(
                format!("{f}.start"),
                &r.start,
                "must be a date, YYYY-MM-DD",
            ));
        }
        let tz_ok = r.time_zone == "UTC"
            || (r.time_zone.contains('/')
                && r.time_zone
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/_-+".contains(c)));
        if !tz_ok {
            return Err(bad(
                format!("{f}.time_zone"),
                &r.time_zone,
                "must be an IANA time zone such as Europe/London or UTC",
            ));
        }
        let mut spans = Vec::new();
        for (j, o) in r.overrides.iter().enumerate() {
            let of = format!("{f}.overrides[{j}]");
            if !receivers.contains(&o.member.as_str()) {
                return Err(bad(
                    format!("{of}.member"),
                    &o.member,
                    "is not a declared receiver",
                ));
            }
            let (Some(from), Some(to)) = (parse_local(&o.from), parse_local(&o.to)) else {
                return Err(bad(
                    of,
                    format!("{} .. {}", o.from, o.to),
                    "from and to must be YYYY-MM-DD HH:MM",
                ));
            };
            if from >= to {
                return Err(bad(
                    of,
                    format!("{} .. {}", o.from, o.to),
                    "must end after it starts",
                ));
            }
            if let Some(k) = spans.iter().position(|&(a, b)| from < b && a < to) {
                return Err(bad(
                    of,
                    format!("{} .. {}", o.from, o.to),
                    &format!("overlaps overrides[{k}]"),
                ));
            }
            spans.push((from, to));
        }
    }
    Ok(())
}

/// Who is on call when: `(start, end, member)` in local minutes, over `[from, to)`.
pub(super) fn schedule(r: &Rotation, from: i64, to: i64) -> Vec<(i64, i64, String)> {
    let (Some(start_day), Some(handover)) = (parse_date(&r.start), parse_time(&r.handover)) else {
        return Vec::new();
    };
    let first = start_day + handover;
    let len = match r.shift {
        Shift::Daily => 1440,
        Shift::Weekly => 7 * 1440,
    };
    let mut out: Vec<(i64, i64, String)> = Vec::new();
    let mut i = ((from - first).div_euclid(len)).max(0);
    loop {
        let (a, b) = (first + i * len, first + (i + 1) * len);
        if a >= to {
            break;
        }
        let member = &r.members[usize::try_from(i).unwrap_or(0) % r.members.len()];
        let (a, b) = (a.max(from), b.min(to));
        if a < b {
            out.push((a, b, member.clone()));
        }
        i += 1;
    }
    for o in &r.overrides {
        let (Some(oa), Some(ob)) = (parse_local(&o.from), parse_local(&o.to)) else {
            continue;
        };
        let (oa, ob) = (oa.max(from), ob.min(to));
        if oa >= ob {
            continue;
        }
        let mut next = Vec::new();
        for (a, b, m) in out {
            if b <= oa || a >= ob {
                next.push((a, b, m));
                continue;
            }
            if a < oa {
                next.push((a, oa, m.clone()));
            }
            if ob < b {
                next.push((ob, b, m));
            }
        }
        next.push((oa, ob, o.member.clone()));
        next.sort();
        out = next;
    }
    out
}

fn hhmm(minutes: i64) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Alertmanager time interval entries (one per local day) of the segments.
fn entries(segments: &[(i64, i64)], location: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for &(a, b) in segments {
        let mut t = a;
        while t < b {
            let day = t.div_euclid(1440);
            let day_end = (day + 1) * 1440;
            let end = b.min(day_end);
            let (y, m, d) = civil_from_days(day);
            out.push(json!({
                "times": [{
                    "start_time": hhmm(t - day * 1440),
                    "end_time": hhmm(end - day * 1440),
                }],
                "days_of_month": [d.to_string()],
                "months": [m.to_string()],
                "years": [y.to_string()],
                "location": location,
            }));
            t = end;
        }
    }
    out
}

/// Name of a member's time interval in a rotation.
pub(super) fn interval_name(rotation: &str, member: &str) -> String {
    format!("oncall-{rotation}-{member}")
}

/// The time intervals of a rotation, and the child routes of the page route it takes over.
pub(super) fn compile(
    r: &Rotation,
    from: i64,
    weeks: u32,
    fallback: &str,
) -> (Vec<Value>, Vec<Value>) {
    let to = from + i64::from(weeks) * 7 * 1440;
    let mut by_member: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for (a, b, m) in schedule(r, from, to) {
        by_member.entry(m).or_default().push((a, b));
    }
    let mut intervals = Vec::new();
    let mut routes = Vec::new();
    let mut names = Vec::new();
    for (member, segments) in &by_member {
        let name = interval_name(&r.name, member);
        intervals.push(json!({
            "name": name,
            "time_intervals": entries(segments, &r.time_zone),
        }));
        routes.push(json!({
            "receiver": member,
            "active_time_intervals": [name],
            "continue": true,
        }));
        names.push(name);
    }
    routes.push(json!({
        "receiver": fallback,
        "mute_time_intervals": names,
    }));
    (intervals, routes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_and_reject_impossible_days() {
        for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2026, 11, 30), (2027, 3, 28)] {
            assert_eq!(civil_from_days(days_from_civil(y, m, d)), (y, m, d));
        }
        assert_eq!(
            parse_date("2026-11-30"),
            Some(days_from_civil(2026, 11, 30) * 1440)
        );
        assert!(parse_date("2026-02-31").is_none());
        assert!(parse_date("2026-13-01").is_none());
        assert_eq!(parse_time("09:30"), Some(570));
        assert!(parse_time("24:00").is_none());
    }

    #[test]
    fn weekly_shifts_rotate_and_overrides_are_carved_out() {
        let mut r = Rotation::new(
            "primary",
            "execution",
            vec!["alice".into(), "bob".into()],
            Shift::Weekly,
            "09:00",
            "2026-11-30",
            "Europe/London",
        );
        r.overrides.push(Override::new(
            "carol",
            "2026-12-02 12:00",
            "2026-12-03 12:00",
        ));
        let from = parse_date("2026-11-30").unwrap();
        let s = schedule(&r, from, from + 14 * 1440);
        let at = |t: &str| {
            let t = parse_local(t).unwrap();
            s.iter()
                .find(|(a, b, _)| *a <= t && t < *b)
                .map(|x| x.2.as_str())
        };
        assert_eq!(at("2026-11-30 08:59"), None, "before the first hand-over");
        assert_eq!(at("2026-11-30 09:00"), Some("alice"));
        assert_eq!(at("2026-12-02 13:00"), Some("carol"));
        assert_eq!(at("2026-12-03 12:00"), Some("alice"));
        assert_eq!(at("2026-12-07 08:59"), Some("alice"));
        assert_eq!(at("2026-12-07 09:00"), Some("bob"));
        // One entry per local day, the first and last partial.
        let alice: Vec<(i64, i64)> = s
            .iter()
            .filter(|x| x.2 == "alice")
            .map(|x| (x.0, x.1))
            .collect();
        let e = entries(&alice, "Europe/London");
        assert_eq!(e[0]["times"][0]["start_time"], "09:00");
        assert_eq!(e[0]["times"][0]["end_time"], "24:00");
        assert_eq!(e[0]["days_of_month"][0], "30");
        assert_eq!(e.last().unwrap()["times"][0]["end_time"], "09:00");
    }
}
