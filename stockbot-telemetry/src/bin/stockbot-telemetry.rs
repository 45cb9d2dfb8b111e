//! `stockbot-telemetry generate …`: writes what Prometheus, Alertmanager, Grafana and
//! Elasticsearch run — from a service's alerting spec, the routing and its telemetry
//! configuration (TOML files). Built only with the `cli` feature, so services never build it.
//!
//! ```text
//! stockbot-telemetry generate rules --spec alerting.toml [--out DIR] [--check]
//! stockbot-telemetry generate alertmanager --notifications routing.toml [--spec alerting.toml]… [--out DIR] [--check]
//! stockbot-telemetry generate dashboards --spec alerting.toml [--out DIR]
//! stockbot-telemetry generate index-template [--config telemetry.toml] [--out DIR]
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use stockbot_telemetry::alerting::{AlertSpec, Notifications};

const USAGE: &str = "usage: stockbot-telemetry generate <what> [options]

  rules --spec alerting.toml [--out DIR] [--check]
      writes DIR/<service>.rules.yml and DIR/<service>.rules.test.yml;
      --check runs `promtool check rules` and `promtool test rules` (when promtool is on PATH)
  alertmanager --notifications routing.toml [--spec alerting.toml]... [--out DIR] [--check]
      writes DIR/alertmanager.yml; every --spec is checked against the routing;
      --check runs `amtool check-config` (when amtool is on PATH)
  dashboards --spec alerting.toml [--out DIR]
      writes DIR/<service>.dashboard.json (Grafana)
  index-template [--config telemetry.toml] [--out DIR]
      writes DIR/<service>-logs.index-template.json and DIR/<service>-logs.ilm-policy.json
      (without --config: the configuration from STOCKBOT_CONFIG and the environment)

DIR defaults to the current directory.";

#[derive(Default)]
struct Args {
    what: String,
    specs: Vec<PathBuf>,
    notifications: Option<PathBuf>,
    config: Option<PathBuf>,
    out: PathBuf,
    check: bool,
}

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    if it.next().as_deref() != Some("generate") {
        return Err("the only command is `generate`".into());
    }
    let mut args = Args {
        what: it.next().ok_or("generate what?")?,
        out: PathBuf::from("."),
        ..Args::default()
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--spec" => args.specs.push(value()?.into()),
            "--notifications" => args.notifications = Some(value()?.into()),
            "--config" => args.config = Some(value()?.into()),
            "--out" => args.out = value()?.into(),
            "--check" => args.check = true,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(args)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(name);
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(path)
}

fn spec(path: &Path) -> Result<AlertSpec, String> {
    AlertSpec::from_toml(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn only_spec(args: &Args) -> Result<AlertSpec, String> {
    match args.specs.as_slice() {
        [one] => spec(one),
        _ => Err(format!("`generate {}` needs exactly one --spec", args.what)),
    }
}

/// The directory of `PATH` that holds `tool`, if any.
fn on_path(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(tool))
            .find(|p| p.is_file())
    })
}

/// Runs `tool args` when it is installed; an error if it fails.
fn check(tool: &str, args: &[&str], dir: &Path) -> Result<(), String> {
    let Some(bin) = on_path(tool) else {
        println!("{tool} not found on PATH: check skipped");
        return Ok(());
    };
    let out = Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{tool} {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn run(args: &Args) -> Result<(), String> {
    match args.what.as_str() {
        "rules" => {
            let spec = only_spec(args)?;
            let rules = format!("{}.rules.yml", spec.service);
            let tests = format!("{}.rules.test.yml", spec.service);
            write(
                &args.out,
                &rules,
                &spec.prometheus_rules().map_err(|e| e.to_string())?,
            )?;
            let cases = spec
                .prometheus_rule_tests(&rules)
                .map_err(|e| e.to_string())?;
            write(&args.out, &tests, &cases.yaml)?;
            if args.check {
                check("promtool", &["check", "rules", &rules], &args.out)?;
                check("promtool", &["test", "rules", &tests], &args.out)?;
            }
            Ok(())
        }
        "alertmanager" => {
            let path = args
                .notifications
                .as_ref()
                .ok_or("`generate alertmanager` needs --notifications")?;
            let routing = Notifications::from_toml(&read(path)?)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for s in &args.specs {
                routing
                    .check_spec(&spec(s)?)
                    .map_err(|e| format!("{}: {e}", s.display()))?;
            }
            let config = routing.alertmanager_config().map_err(|e| e.to_string())?;
            write(&args.out, "alertmanager.yml", &config)?;
            if args.check {
                check("amtool", &["check-config", "alertmanager.yml"], &args.out)?;
            }
            Ok(())
        }
        "dashboards" => {
            let spec = only_spec(args)?;
            let dashboard = spec.grafana_dashboard().map_err(|e| e.to_string())?;
            write(
                &args.out,
                &format!("{}.dashboard.json", spec.service),
                &dashboard,
            )?;
            Ok(())
        }
        "index-template" => {
            let config = match &args.config {
                Some(path) => stockbot_telemetry::Config::from_file(path),
                None => stockbot_telemetry::Config::load(),
            }
            .map_err(|e| e.to_string())?;
            let name = stockbot_telemetry::elasticsearch::template_name(&config);
            let pretty =
                |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
            write(
                &args.out,
                &format!("{name}.index-template.json"),
                &pretty(&stockbot_telemetry::elasticsearch::index_template(&config)),
            )?;
            write(
                &args.out,
                &format!("{name}.ilm-policy.json"),
                &pretty(&stockbot_telemetry::elasticsearch::ilm_policy(&config)),
            )?;
            Ok(())
        }
        other => Err(format!("unknown output {other:?}")),
    }
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("stockbot-telemetry: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stockbot-telemetry: {e}");
            ExitCode::FAILURE
        }
    }
}
