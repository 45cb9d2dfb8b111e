//! Log retention and search from the command line, with the service's own configuration
//! (`Config::load`: defaults, the file named by `STOCKBOT_CONFIG`, then `STOCKBOT_*` / `OTEL_*`).
//!
//! ```text
//! stockbot-logs template                 # print the index template (JSON)
//! stockbot-logs ilm-policy               # print the ILM policy (JSON)
//! stockbot-logs install                  # PUT both into log.elasticsearch
//! stockbot-logs search --trace-id 4bf92f3577b34da6a3ce929d0e0e4736 [--limit 1000]
//! stockbot-logs search --cl-ord-id C-1001
//! ```
//!
//! `search` asks Elasticsearch when `log.elasticsearch` is configured (e.g.
//! `STOCKBOT_ELASTICSEARCH_URL`), and reads the local rolling files in `log.file.directory`
//! otherwise. It prints one JSON record per line, oldest first.

use std::process::ExitCode;

use stockbot_telemetry::elasticsearch::{self, LogQuery};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().skip_while(|a| *a != name).nth(1).cloned()
}

fn run(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let config = stockbot_telemetry::Config::load()?;
    match args.first().map(String::as_str) {
        Some("template") => {
            println!("{:#}", elasticsearch::index_template(&config));
        }
        Some("ilm-policy") => {
            println!("{:#}", elasticsearch::ilm_policy(&config));
        }
        Some("install") => {
            elasticsearch::install(&config)?;
            eprintln!(
                "installed ILM policy and index template `{}`",
                elasticsearch::template_name(&config)
            );
        }
        Some("search") => {
            let query = match (arg(args, "--trace-id"), arg(args, "--cl-ord-id")) {
                (Some(t), None) => LogQuery::TraceId(t),
                (None, Some(c)) => LogQuery::ClOrdId(c),
                _ => return Err("search needs exactly one of --trace-id or --cl-ord-id".into()),
            };
            let limit = arg(args, "--limit")
                .map(|l| l.parse())
                .transpose()?
                .unwrap_or(1000);
            for record in elasticsearch::search(&config, &query, limit)? {
                println!("{record}");
            }
        }
        _ => {
            return Err(
                "usage: stockbot-logs template | ilm-policy | install | search (--trace-id ID | --cl-ord-id ID) [--limit N]"
                    .into(),
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stockbot-logs: {e}");
            ExitCode::FAILURE
        }
    }
}
