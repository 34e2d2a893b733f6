//! Replays what the fuzzers found, and their seed corpora, through the very harness the fuzz
//! targets run (`fuzz/src/lib.rs`, included below), so that a fixed finding stays fixed.
//! docs/SECURITY.md lists the fuzzing done and what each saved input guards.

#[allow(dead_code)]
#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

/// The files of `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// The saved findings and the seeds of `target`.
fn corpus(target: &str) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    (
        inputs(&manifest.join("tests/fuzz-regressions").join(target)),
        inputs(&manifest.join("../../fuzz/seeds").join(target)),
    )
}

/// Runs `harness` on every input; a panic fails the test naming the file.
fn replay(target: &str, files: &[PathBuf], harness: impl Fn(&[u8])) {
    for file in files {
        let data = std::fs::read(file).unwrap();
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harness(&data))).is_err() {
            panic!("{target}: {} fails again", file.display());
        }
    }
}

#[test]
fn reader_findings_and_seeds() {
    let (findings, seeds) = corpus("reader");
    assert!(seeds.len() >= 5, "fuzz/seeds/reader is missing");
    replay("reader", &findings, harness::reader);
    replay("reader", &seeds, harness::reader);
}

#[test]
fn loader_findings_and_seeds() {
    let (findings, seeds) = corpus("loader");
    replay("loader", &findings, harness::loader);
    // The seeds are real modules: the harness must load them, or the fuzzer would only ever
    // have exercised the reader.
    assert!(seeds.len() >= 3, "fuzz/seeds/loader is missing");
    // (`consumer.sme` imports from `provider.smf`, which the harness does not load: it is
    // refused at import resolution.)
    for seed in &seeds {
        let outcome = harness::load_outcome(&std::fs::read(seed).unwrap());
        // The seeds are x86-64 Linux modules: a loader for another architecture, or for
        // Windows, refuses them.
        let expected =
            if simple_loader::HOST_ARCH != Some(smf_format::Arch::X86_64) || cfg!(windows) {
                harness::LoadOutcome::Refused
            } else if seed.ends_with("consumer.sme") {
                harness::LoadOutcome::Refused
            } else {
                harness::LoadOutcome::Loaded
            };
        assert_eq!(outcome, expected, "{}", seed.display());
    }
}

#[test]
fn packer_findings_and_seeds() {
    let (findings, seeds) = corpus("packer");
    replay("packer", &findings, harness::packer);
    assert!(seeds.len() >= 10, "fuzz/seeds/packer is missing");
    replay("packer", &seeds, harness::packer);
}

#[test]
fn typeinfo_findings_and_seeds() {
    let (findings, seeds) = corpus("typeinfo");
    replay("typeinfo", &findings, harness::typeinfo);
    assert!(seeds.len() >= 2, "fuzz/seeds/typeinfo is missing");
    replay("typeinfo", &seeds, harness::typeinfo);
}

#[test]
fn srcmap_findings_and_seeds() {
    let (findings, seeds) = corpus("srcmap");
    replay("srcmap", &findings, harness::srcmap);
    assert!(seeds.len() >= 2, "fuzz/seeds/srcmap is missing");
    // The seeds are real tables: the harness must accept them, or the fuzzer would only ever
    // have exercised the header checks.
    for seed in &seeds {
        let data = std::fs::read(seed).unwrap();
        smf_format::SourceMap::parse(&data).unwrap_or_else(|e| panic!("{}: {e}", seed.display()));
        harness::srcmap(&data);
    }
}

#[test]
fn compressed_and_versions_findings_and_seeds() {
    let (findings, seeds) = corpus("compressed");
    assert!(!seeds.is_empty(), "fuzz/seeds/compressed is missing");
    replay("compressed", &findings, harness::compressed);
    replay("compressed", &seeds, harness::compressed);
    let (findings, seeds) = corpus("versions");
    assert!(!seeds.is_empty(), "fuzz/seeds/versions is missing");
    replay("versions", &findings, harness::versions);
    replay("versions", &seeds, harness::versions);
}
