//! The Alertmanager side: receivers, the routing tree (team → service override → severity →
//! escalation tier), grouping and inhibition.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};

use super::oncall::{self, Rotation};
use super::rules::promql_duration;
use super::{AlertSpec, Severity};
use crate::error::Error;

/// Who is notified of what, how alerts are grouped, and how pages escalate.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Notifications {
    /// Every receiver routes may name.
    #[serde(rename = "receiver")]
    pub receivers: Vec<Receiver>,
    /// Per team: who gets its pages and tickets, and the escalation tiers.
    #[serde(rename = "team")]
    pub teams: Vec<TeamRoute>,
    /// Alerts of no known team.
    pub default_receiver: String,
    /// Labels that make one notification group. Default `alertname`, `service`, `slo`.
    #[serde(default = "Notifications::default_group_by")]
    pub group_by: Vec<String>,
    /// Wait before the first notification of a group. Default 30 s.
    #[serde(
        default = "Notifications::default_group_wait",
        with = "humantime_serde"
    )]
    pub group_wait: Duration,
    /// Wait before notifying of new alerts in a group. Default 5 min.
    #[serde(
        default = "Notifications::default_group_interval",
        with = "humantime_serde"
    )]
    pub group_interval: Duration,
    /// Repeat of a still-firing group. Default 4 h.
    #[serde(default = "Notifications::default_repeat", with = "humantime_serde")]
    pub repeat_interval: Duration,
    /// The mail relay, needed when a receiver sends email.
    #[serde(default)]
    pub smtp: Option<Smtp>,
    /// On-call rotations: who of a team takes its pages (or an escalation tier) when.
    #[serde(default, rename = "rotation")]
    pub rotations: Vec<Rotation>,
    /// First day (`YYYY-MM-DD`) of the schedule the rotations are compiled for.
    #[serde(default)]
    pub schedule_from: Option<String>,
    /// Weeks of schedule listed (regenerate before they run out: past them, pages go to the
    /// team's page receiver). Default 12.
    #[serde(default = "Notifications::default_weeks")]
    pub schedule_weeks: u32,
}

/// The mail relay.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Smtp {
    /// `host:port`.
    pub smarthost: String,
    /// Sender address.
    pub from: String,
}

/// A destination of notifications: any of email, SMS (through a webhook gateway), a
/// Slack-compatible chat webhook, PagerDuty, a generic webhook. Secrets (webhook URLs with
/// tokens, PagerDuty keys) are read by Alertmanager from files, never written into the
/// generated configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Receiver {
    /// Name routes use.
    pub name: String,
    /// Email addresses.
    #[serde(default)]
    pub email: Vec<String>,
    /// URL of an SMS gateway that takes Alertmanager's webhook payload.
    #[serde(default)]
    pub sms_webhook: Option<String>,
    /// Slack-compatible chat.
    #[serde(default)]
    pub chat: Option<Chat>,
    /// File holding the PagerDuty Events API v2 routing key.
    #[serde(default)]
    pub pagerduty_key_file: Option<PathBuf>,
    /// A generic webhook.
    #[serde(default)]
    pub webhook: Option<String>,
}

/// A Slack-compatible incoming webhook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Chat {
    /// File holding the webhook URL (it carries a token).
    pub url_file: PathBuf,
    /// `#channel`.
    pub channel: String,
}

/// One team's routing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TeamRoute {
    /// The `team` label.
    pub team: String,
    /// Receiver of its pages (the on-call engineer: tier 1).
    pub page: String,
    /// Receiver of its tickets.
    pub ticket: String,
    /// Receivers of the escalation tiers 2, 3, … of its pages (see
    /// [`AlertSpec::escalation`]).
    #[serde(default)]
    pub escalation: Vec<String>,
    /// Services of the team whose alerts go elsewhere.
    #[serde(default)]
    pub services: Vec<ServiceRoute>,
}

/// A service whose alerts (of one severity, or all) go to another receiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceRoute {
    /// The `service` label.
    pub service: String,
    /// Only this severity (default: both).
    #[serde(default)]
    pub severity: Option<Severity>,
    /// Where they go.
    pub receiver: String,
}

impl Smtp {
    /// Mail through `smarthost` (`host:port`) from `from`.
    pub fn new(smarthost: impl Into<String>, from: impl Into<String>) -> Self {
        Smtp {
            smarthost: smarthost.into(),
            from: from.into(),
        }
    }
}

impl Chat {
    /// A chat webhook whose URL is in `url_file`, posting to `channel`.
    pub fn new(url_file: impl Into<PathBuf>, channel: impl Into<String>) -> Self {
        Chat {
            url_file: url_file.into(),
            channel: channel.into(),
        }
    }
}

impl ServiceRoute {
    /// `service`'s alerts (of `severity`, or all) to `receiver`.
    pub fn new(
        service: impl Into<String>,
        severity: Option<Severity>,
        receiver: impl Into<String>,
    ) -> Self {
        ServiceRoute {
            service: service.into(),
            severity,
            receiver: receiver.into(),
        }
    }
}

impl Receiver {
    /// A receiver with no destination yet.
    pub fn new(name: impl Into<String>) -> Self {
        Receiver {
            name: name.into(),
            ..Receiver::default()
        }
    }
}

impl TeamRoute {
    /// `team`'s pages to `page`, tickets to `ticket`.
    pub fn new(
        team: impl Into<String>,
        page: impl Into<String>,
        ticket: impl Into<String>,
    ) -> Self {
        TeamRoute {
            team: team.into(),
            page: page.into(),
            ticket: ticket.into(),
            escalation: Vec::new(),
            services: Vec::new(),
        }
    }
}

fn bad(field: String, value: impl std::fmt::Display, reason: &str) -> Error {
    Error::invalid(field, value, reason.to_owned())
}

impl Notifications {
    /// Routing with these receivers and teams; the rest default.
    pub fn new(
        receivers: Vec<Receiver>,
        teams: Vec<TeamRoute>,
        default_receiver: impl Into<String>,
    ) -> Self {
        Notifications {
            receivers,
            teams,
            default_receiver: default_receiver.into(),
            group_by: Self::default_group_by(),
            group_wait: Self::default_group_wait(),
            group_interval: Self::default_group_interval(),
            repeat_interval: Self::default_repeat(),
            smtp: None,
            rotations: Vec::new(),
            schedule_from: None,
            schedule_weeks: Self::default_weeks(),
        }
    }

    fn default_weeks() -> u32 {
        12
    }

    fn default_group_by() -> Vec<String> {
        vec!["alertname".into(), "service".into(), "slo".into()]
    }

    fn default_group_wait() -> Duration {
        Duration::from_secs(30)
    }

    fn default_group_interval() -> Duration {
        Duration::from_secs(300)
    }

    fn default_repeat() -> Duration {
        Duration::from_secs(4 * 3600)
    }

    /// Reads the routing from TOML text.
    ///
    /// # Errors
    /// A syntax error or an unknown key; then [`validate`](Self::validate).
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let n: Notifications = toml::from_str(text)
            .map_err(|e| Error::invalid("notifications", "<toml>", e.to_string()))?;
        n.validate()?;
        Ok(n)
    }

    /// Checks that every receiver has a destination and the fields it needs, and that routes
    /// name known receivers.
    ///
    /// # Errors
    /// The first problem, naming the item (`receiver[2].chat.channel`, `team[0].page`, …).
    pub fn validate(&self) -> Result<(), Error> {
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            let f = format!("receiver[{i}]");
            if r.name.trim().is_empty() {
                return Err(bad(format!("{f}.name"), "", "must not be empty"));
            }
            if !names.insert(r.name.as_str()) {
                return Err(bad(format!("{f}.name"), &r.name, "is declared twice"));
            }
            let any = !r.email.is_empty()
                || r.sms_webhook.is_some()
                || r.chat.is_some()
                || r.pagerduty_key_file.is_some()
                || r.webhook.is_some();
            if !any && r.name != self.default_receiver {
                return Err(bad(
                    f,
                    &r.name,
                    "needs a destination: email, sms_webhook, chat, pagerduty_key_file or webhook",
                ));
            }
            for (j, to) in r.email.iter().enumerate() {
                if !to.contains('@') || to.contains(char::is_whitespace) {
                    return Err(bad(
                        format!("{f}.email[{j}]"),
                        to,
                        "is not an email address",
                    ));
                }
            }
            if !r.email.is_empty() && self.smtp.is_none() {
                return Err(bad(
                    format!("{f}.email"),
                    r.email.join(","),
                    "needs `smtp` (smarthost and from)",
                ));
            }
            for (field, url) in [("sms_webhook", &r.sms_webhook), ("webhook", &r.webhook)] {
                if let Some(u) = url
                    && !(u.starts_with("http://") || u.starts_with("https://"))
                {
                    return Err(bad(format!("{f}.{field}"), u, "must be an http(s) URL"));
                }
            }
            if let Some(c) = &r.chat {
                if !c.channel.starts_with('#') && !c.channel.starts_with('@') {
                    return Err(bad(
                        format!("{f}.chat.channel"),
                        &c.channel,
                        "must start with # or @",
                    ));
                }
                if c.url_file.as_os_str().is_empty() {
                    return Err(bad(format!("{f}.chat.url_file"), "", "must not be empty"));
                }
            }
        }
        let known = |field: String, name: &str| -> Result<(), Error> {
            if names.contains(name) {
                Ok(())
            } else {
                Err(bad(field, name, "is not a declared receiver"))
            }
        };
        known("default_receiver".into(), &self.default_receiver)?;
        let mut teams = std::collections::BTreeSet::new();
        for (i, t) in self.teams.iter().enumerate() {
            let f = format!("team[{i}]");
            if !teams.insert(t.team.as_str()) {
                return Err(bad(format!("{f}.team"), &t.team, "is declared twice"));
            }
            known(format!("{f}.page"), &t.page)?;
            known(format!("{f}.ticket"), &t.ticket)?;
            for (j, e) in t.escalation.iter().enumerate() {
                known(format!("{f}.escalation[{j}]"), e)?;
            }
            for (j, s) in t.services.iter().enumerate() {
                known(format!("{f}.services[{j}].receiver"), &s.receiver)?;
            }
        }
        let receivers: Vec<&str> = self.receivers.iter().map(|r| r.name.as_str()).collect();
        let tiers = self
            .teams
            .iter()
            .map(|t| (t.team.as_str(), 1 + t.escalation.len()))
            .collect();
        oncall::validate(
            &self.rotations,
            &receivers,
            &tiers,
            self.schedule_from.as_deref(),
            self.schedule_weeks,
        )?;
        if let Some(s) = &self.smtp
            && (!s.smarthost.contains(':') || !s.from.contains('@'))
        {
            return Err(bad(
                "smtp".into(),
                format!("{} / {}", s.smarthost, s.from),
                "needs smarthost host:port and a from address",
            ));
        }
        Ok(())
    }

    /// Checks that a service's alert spec and this routing agree: its team is routed and has
    /// a receiver for every escalation tier.
    ///
    /// # Errors
    /// Naming the team or the tier.
    pub fn check_spec(&self, spec: &AlertSpec) -> Result<(), Error> {
        let Some(team) = self.teams.iter().find(|t| t.team == spec.team) else {
            return Err(bad(
                "team".into(),
                &spec.team,
                "has no route in the notifications",
            ));
        };
        if team.escalation.len() != spec.escalation.len() {
            return Err(bad(
                "escalation".into(),
                spec.escalation.len(),
                &format!(
                    "tiers in the alert spec, but team {} routes {}",
                    team.team,
                    team.escalation.len()
                ),
            ));
        }
        Ok(())
    }

    /// The Alertmanager configuration (YAML), accepted by `amtool check-config`.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn alertmanager_config(&self) -> Result<String, Error> {
        self.validate()?;
        Ok(super::yaml::to_yaml(&self.config()))
    }

    /// The Alertmanager configuration as JSON data (the YAML's content), e.g. for an
    /// evaluator of who is notified when.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn alertmanager_json(&self) -> Result<Value, Error> {
        self.validate()?;
        Ok(self.config())
    }

    fn config(&self) -> Value {
        let matcher = |k: &str, v: &str| format!("{k}={}", Value::String(v.to_owned()));
        let from = self
            .schedule_from
            .as_deref()
            .and_then(oncall::parse_date)
            .unwrap_or_default();
        let mut intervals = Vec::new();
        // A rotation takes over the route of its team and tier: its members' routes become
        // the route's children.
        let mut rotate = |route: &mut Value, team: &str, tier: usize, fallback: &str| {
            if let Some(r) = self
                .rotations
                .iter()
                .find(|r| r.team == team && r.tier == tier)
            {
                let (iv, children) = oncall::compile(r, from, self.schedule_weeks, fallback);
                intervals.extend(iv);
                route["routes"] = Value::Array(children);
            }
        };
        let mut team_routes = Vec::new();
        for t in &self.teams {
            let mut routes = Vec::new();
            for s in &t.services {
                let mut m = vec![matcher("service", &s.service)];
                if let Some(sev) = s.severity {
                    m.push(matcher("severity", sev.as_str()));
                }
                routes.push(json!({"matchers": m, "receiver": s.receiver}));
            }
            // Highest tier first: an alert carries one tier label.
            for (k, receiver) in t.escalation.iter().enumerate().rev() {
                let mut route = json!({
                    "matchers": [matcher("severity", "page"), matcher("tier", &(k + 2).to_string())],
                    "receiver": receiver,
                    "repeat_interval": "1h",
                });
                rotate(&mut route, &t.team, k + 2, receiver);
                routes.push(route);
            }
            let mut page = json!({
                "matchers": [matcher("severity", "page")],
                "receiver": t.page,
                "repeat_interval": "1h",
            });
            rotate(&mut page, &t.team, 1, &t.page);
            routes.push(page);
            routes.push(json!({
                "matchers": [matcher("severity", "ticket")],
                "receiver": t.ticket,
            }));
            team_routes.push(json!({
                "matchers": [matcher("team", &t.team)],
                "receiver": t.ticket,
                "routes": routes,
            }));
        }
        let receivers: Vec<Value> = self.receivers.iter().map(receiver).collect();
        let mut global = serde_json::Map::new();
        global.insert("resolve_timeout".into(), json!("5m"));
        if let Some(s) = &self.smtp {
            global.insert("smtp_smarthost".into(), json!(s.smarthost));
            global.insert("smtp_from".into(), json!(s.from));
        }
        let mut config = json!({
            "global": global,
            "route": {
                "receiver": self.default_receiver,
                "group_by": self.group_by,
                "group_wait": promql_duration(self.group_wait),
                "group_interval": promql_duration(self.group_interval),
                "repeat_interval": promql_duration(self.repeat_interval),
                "routes": team_routes,
            },
            "inhibit_rules": [
                {
                    // A service that is down does not also page for its symptoms.
                    "source_matchers": [matcher("alertname", "ServiceDown")],
                    "target_matchers": ["alertname!=\"ServiceDown\""],
                    "equal": ["service"],
                },
                {
                    // A page for an SLO silences the ticket for the same SLO.
                    "source_matchers": [matcher("severity", "page")],
                    "target_matchers": [matcher("severity", "ticket")],
                    "equal": ["service", "slo"],
                },
            ],
            "receivers": receivers,
        });
        if !intervals.is_empty() {
            config["time_intervals"] = Value::Array(intervals);
        }
        config
    }
}

fn receiver(r: &Receiver) -> Value {
    let mut out = serde_json::Map::new();
    out.insert("name".into(), json!(r.name));
    if !r.email.is_empty() {
        let configs: Vec<Value> = r
            .email
            .iter()
            .map(|to| json!({"to": to, "send_resolved": true}))
            .collect();
        out.insert("email_configs".into(), Value::Array(configs));
    }
    let mut webhooks = Vec::new();
    for url in r.sms_webhook.iter().chain(r.webhook.iter()) {
        webhooks.push(json!({"url": url, "send_resolved": true}));
    }
    if !webhooks.is_empty() {
        out.insert("webhook_configs".into(), Value::Array(webhooks));
    }
    if let Some(c) = &r.chat {
        out.insert(
            "slack_configs".into(),
            json!([{
                "api_url_file": c.url_file.display().to_string(),
                "channel": c.channel,
                "send_resolved": true,
                "title": "{{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }}) {{ .CommonLabels.service }}",
                "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
            }]),
        );
    }
    if let Some(k) = &r.pagerduty_key_file {
        out.insert(
            "pagerduty_configs".into(),
            json!([{"routing_key_file": k.display().to_string(), "send_resolved": true}]),
        );
    }
    Value::Object(out)
}
