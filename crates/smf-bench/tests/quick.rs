//! Runs the whole benchmark in quick mode, so that the benchmark code cannot rot: every
//! section builds its inputs, measures both sides and checks that they agree.
//!
//! Built for another architecture, the test runs under the emulator `.cargo/config.toml`
//! names, which hands it the cross C compiler as `CC` and its own command line as
//! `SMF_TEST_RUNNER` (words separated by spaces): the packer process runs through it too.

#[test]
fn quick_mode_runs_every_section() {
    let runner = std::env::var("SMF_TEST_RUNNER").unwrap_or_default();
    let packer = runner
        .split_whitespace()
        .map(Into::into)
        .chain([env!("CARGO_BIN_EXE_smf-bench-pack").into()])
        .collect();
    let config = smf_bench::Config {
        quick: true,
        packer,
        only: None,
    };
    let output = smf_bench::run(&config).unwrap_or_else(|e| panic!("{e}"));
    let text = output.render();
    for section in [
        "Real code: SQLite and Lua",
        "lua: reload (--reloadable",
        "lua: minor page faults in one load",
        "Memory per module, real code",
        "load to first symbol",
        "symbol lookup",
        "pack (cc -shared vs smf pack",
        "run speed",
        "Registry::reload",
        "through the trampoline",
        "mapped beyond the payload",
        "Scaling: load to first symbol by load-time relocations",
        "Scaling: load to first symbol by imports",
        "Scaling: Registry::resolve by modules loaded",
    ] {
        assert!(text.contains(section), "no {section:?} in:\n{text}");
    }
    assert!(output.targets().count() >= 10, "rows with targets:\n{text}");
}
