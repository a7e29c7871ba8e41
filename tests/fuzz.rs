//! The fuzz harness (`src/bin/ayt-fuzz`): a short budget of every parser target finds nothing,
//! and the harness's self-test target shows that a panic, a hang and an allocation past the
//! bound are each caught, recorded with their input, and replayable by index.

use std::path::Path;
use std::process::Command;

fn fuzz(args: &[&str], out: &Path) -> (bool, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_ayt-fuzz")).args(args).arg("--out").arg(out).output().expect("ayt-fuzz runs");
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    (o.status.success(), text)
}

/// The saved input of a report line such as `    input 5: panic: ... (DIR/selftest-seed1-5.bin)`.
fn finding_file(line: &str) -> &str {
    line.rsplit_once(" (").expect("a finding names its file").1.trim_end_matches(')')
}

/// CI's budget: every parser of a user file, a few hundred mutated inputs each (the long runs,
/// a million each, are in docs/architecture.md, "Fuzzing").
#[test]
fn every_parser_target_survives_a_short_budget() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = fuzz(&["all", "--execs", "300", "--seed", "7"], dir.path());
    assert!(ok, "ayt-fuzz found something:\n{text}");
    let listed = Command::new(env!("CARGO_BIN_EXE_ayt-fuzz")).arg("--list").output().unwrap();
    let targets: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| !l.contains("not in `all`"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect();
    assert_eq!(targets.len(), 17, "{targets:?}");
    for t in &targets {
        let line =
            text.lines().find(|l| l.split_whitespace().next() == Some(t.as_str())).unwrap_or_else(|| panic!("no report for {t}:\n{text}"));
        assert!(line.contains(" 300 executions") && line.ends_with("no finding"), "{line}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 0, "findings written:\n{text}");
}

#[test]
fn the_harness_catches_panics_hangs_and_allocations_and_replays_them() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, text) = fuzz(&["selftest", "--execs", "24", "--seed", "1", "--timeout-s", "1", "--max-mib", "512"], dir.path());
    assert!(!ok, "findings must fail the run:\n{text}");
    let findings: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("input ")).collect();
    let mut kinds = [0; 3];
    for f in &findings {
        let first = std::fs::read(finding_file(f)).unwrap().first().copied();
        let (kind, expected) = if f.contains(": panic:") {
            (0, b'P')
        } else if f.contains(": hang:") {
            (1, b'H')
        } else if f.contains(": allocation past 512 MiB") {
            (2, b'A')
        } else {
            panic!("unexpected finding {f}")
        };
        assert_eq!(first, Some(expected), "{f}");
        kinds[kind] += 1;
    }
    assert!(kinds.iter().all(|&n| n > 0), "panics, hangs, allocations found: {kinds:?}\n{text}");
    // The report counts the inputs that ran: the run went on past each finding to the last.
    assert!(text.contains(" 24 executions"), "{text}");

    // A saved finding replays in-process from its file alone.
    let panic_file = finding_file(findings.iter().find(|f| f.contains(": panic:")).unwrap());
    let replay = Command::new(env!("CARGO_BIN_EXE_ayt-fuzz")).args(["--replay", "selftest", panic_file]).output().unwrap();
    assert!(!replay.status.success() && String::from_utf8_lossy(&replay.stderr).contains("selftest: a panic"), "{replay:?}");
}
