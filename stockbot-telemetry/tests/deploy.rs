//! `deploy/`: the configs for users with real infrastructure. Every generated file is what
//! `deploy/generate.sh` produces from its sources today (no drift), and each file is checked
//! by the real tool where one exists here — `promtool check config`, `promtool check rules`,
//! `promtool test rules`, `amtool check-config` — and parsed (YAML, JSON) where none does.
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("stockbot-deploy-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a tool (by absolute path: it must be installed; a missing tool fails the test).
fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool)
        .args(args)
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| {
            panic!("{tool} cannot run ({e}): scripts/install-test-deps.sh installs it")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{tool} {args:?} failed:\n{text}");
    text
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_generated_files_are_what_the_sources_generate_and_the_real_tools_accept_them() {
    let out = tmp("generate");
    let output = Command::new("bash")
        .arg("deploy/generate.sh")
        .arg(&out)
        .env(
            "STOCKBOT_TELEMETRY",
            env!("CARGO_BIN_EXE_stockbot-telemetry"),
        )
        .env("PATH", "/usr/bin:/bin")
        .current_dir(root())
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{log}");
    // With promtool and amtool installed, the generator checked every output with them.
    assert!(!log.contains("skipped"), "{log}");
    let generated = files(&out);
    assert!(generated.len() >= 15, "{generated:?}");
    for file in &generated {
        let fresh = std::fs::read_to_string(out.join(file)).unwrap();
        let committed =
            std::fs::read_to_string(root().join("deploy").join(file)).unwrap_or_else(|e| {
                panic!(
                    "deploy/{} is generated but not committed: {e}",
                    file.display()
                )
            });
        assert!(
            fresh == committed,
            "deploy/{} differs from what deploy/generate.sh writes: run it and commit",
            file.display()
        );
    }
    // generate.sh checked every rule file and ran its generated unit tests with promtool,
    // and the Alertmanager configuration with amtool.
    let rule_files = generated
        .iter()
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .count();
    assert!(rule_files >= 3, "{generated:?}");
    assert!(log.matches("SUCCESS").count() > 2 * rule_files, "{log}");
    let am = run(
        "/usr/bin/amtool",
        &["check-config", "deploy/alertmanager/alertmanager.yml"],
    );
    assert!(am.contains("SUCCESS"), "{am}");
    let _ = std::fs::remove_dir_all(out);
}

#[test]
fn prometheus_yml_passes_promtool_with_the_demo_targets_file() {
    // The container paths point into the repository and at a targets file in the demo's
    // format (what `stockbot-demo` writes to demo-run/prometheus-targets.json).
    let dir = tmp("prometheus");
    std::fs::write(
        dir.join("prometheus-targets.json"),
        r#"[{"targets":["127.0.0.1:9464"],"labels":{"service":"order-router"}}]"#,
    )
    .unwrap();
    let rules = root().join("deploy/prometheus/rules");
    let config = std::fs::read_to_string(root().join("deploy/prometheus/prometheus.yml"))
        .unwrap()
        .replace("/etc/prometheus/targets/", &format!("{}/", dir.display()))
        .replace("- rules/", &format!("- {}/", rules.display()));
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let out = run(
        "/usr/bin/promtool",
        &[
            "check",
            "config",
            dir.join("prometheus.yml").to_str().unwrap(),
        ],
    );
    assert!(out.contains("SUCCESS") && !out.contains("WARNING"), "{out}");
    // A malformed targets file is refused: the check reads it.
    std::fs::write(dir.join("prometheus-targets.json"), "{").unwrap();
    let refused = Command::new("/usr/bin/promtool")
        .args([
            "check",
            "config",
            dir.join("prometheus.yml").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

fn yaml(path: &str) -> Yaml {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path}");
    docs.remove(0)
}

fn keys(y: &Yaml) -> Vec<String> {
    y.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_compose_stack_and_the_collector_config_are_complete() {
    let compose = yaml("deploy/compose.yaml");
    let services = keys(&compose["services"]);
    for s in [
        "prometheus",
        "alertmanager",
        "grafana",
        "jaeger",
        "elasticsearch",
        "kibana",
        "otel-collector",
    ] {
        assert!(
            services.iter().any(|x| x == s),
            "compose has no {s}: {services:?}"
        );
    }
    // Alertmanager stays off the cluster port; everything binds loopback.
    let text = std::fs::read_to_string(root().join("deploy/compose.yaml")).unwrap();
    assert!(
        text.contains("--cluster.listen-address="),
        "alertmanager must not cluster"
    );
    assert!(!text.contains("0.0.0.0"), "a server binds all interfaces");

    let collector = yaml("deploy/otel-collector.yaml");
    let pipelines = &collector["service"]["pipelines"];
    for signal in ["traces", "metrics", "logs"] {
        let p = &pipelines[signal];
        assert!(!p.is_badvalue(), "no {signal} pipeline");
        for (kind, section) in [
            ("receivers", "receivers"),
            ("processors", "processors"),
            ("exporters", "exporters"),
        ] {
            for name in p[kind]
                .as_vec()
                .unwrap_or_else(|| panic!("{signal}.{kind}"))
            {
                let name = name.as_str().unwrap();
                assert!(
                    keys(&collector[section]).iter().any(|k| k == name),
                    "{signal} uses undefined {section} {name}"
                );
            }
        }
    }
    let collector_text =
        std::fs::read_to_string(root().join("deploy/otel-collector.yaml")).unwrap();
    assert!(
        !collector_text.contains("0.0.0.0"),
        "the Collector binds all interfaces"
    );

    for file in [
        "deploy/jaeger.yaml",
        "deploy/grafana/provisioning/datasources/prometheus.yaml",
        "deploy/grafana/provisioning/datasources/elasticsearch.yaml",
        "deploy/grafana/provisioning/datasources/jaeger.yaml",
        "deploy/grafana/provisioning/dashboards/stockbot.yaml",
    ] {
        let y = yaml(file);
        assert!(y.as_hash().is_some_and(|h| !h.is_empty()), "{file}");
    }
    for dir in ["deploy/grafana/dashboards", "deploy/elasticsearch"] {
        for file in files(&root().join(dir)) {
            if file.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(root().join(dir).join(&file)).unwrap();
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("{dir}/{}: {e}", file.display()));
            }
        }
    }
}
