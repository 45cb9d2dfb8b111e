//! The configuration examples of the guides in `docs/` (each ```toml block marked
//! `<!-- config -->`) are complete configurations that load and validate. (Their Rust blocks
//! run as doctests of the testing crate.)

use std::path::Path;

#[test]
fn every_configuration_example_in_the_guides_loads_and_validates() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    let dir = std::env::temp_dir().join(format!("stockbot-guides-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut checked = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&docs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if line.trim() != "<!-- config -->" {
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy();
            assert_eq!(
                lines.get(i + 1).map(|l| l.trim()),
                Some("```toml"),
                "{name}:{}: <!-- config --> must be followed by a ```toml block",
                i + 1
            );
            let block: Vec<&str> = lines[i + 2..]
                .iter()
                .take_while(|l| l.trim() != "```")
                .copied()
                .collect();
            let file = dir.join(format!("{name}-{}.toml", i + 1));
            std::fs::write(&file, block.join("\n")).unwrap();
            let config = stockbot_telemetry::Config::from_file(&file)
                .unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 3));
            config
                .validate()
                .unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 3));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} configuration examples found");
    let _ = std::fs::remove_dir_all(dir);
}
