//! Drives `examples/calc.rs` through its standard input: definitions compiled and swapped
//! in while a background thread calls `step()`, the counter keeping its value.

use std::io::Write;
use std::process::{Command, Stdio};

#[test]
fn the_calculator_swaps_definitions_and_keeps_its_counter() {
    // `cargo test` builds the examples next to the test binaries' directory.
    let exe = std::env::current_exe().unwrap();
    let calc = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/calc");
    // Directly, or through the runner `SMF_TEST_RUNNER` names (words separated by spaces;
    // `.cargo/config.toml` sets it to the qemu command line for aarch64 builds tested on an
    // x86-64 machine).
    let runner = std::env::var("SMF_TEST_RUNNER").unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut command = match words.next() {
        Some(first) => {
            let mut command = Command::new(first);
            command.args(words).arg(&calc);
            command
        }
        None => Command::new(&calc),
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", calc.display()));
    let script = "def double(x) = x * 2\n\
                  double(21)\n\
                  def step() = tick()\n\
                  sleep 100\n\
                  ticks\n\
                  def double(x) = x * 3 + 10 / 0\n\
                  double(21)\n\
                  ticks\n\
                  def step() = 1000000 + tick()\n\
                  sleep 100\n\
                  last\n\
                  7 / -1\n\
                  (1 + 2) * -3\n\
                  foo(1)\n\
                  def bad(x) = y\n\
                  double(21)\n";
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let out = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    let number = |i: usize| -> i64 {
        let line = lines[i];
        line.rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|_| panic!("{out}"))
    };
    assert_eq!(lines.len(), 14, "{out}");
    assert_eq!(
        lines[0], "defined double: calc version 2, kept ticks",
        "{out}"
    );
    assert_eq!(lines[1], "42");
    assert_eq!(lines[2], "defined step: calc version 3, kept ticks");
    let ticks_before = number(3);
    assert!(ticks_before > 0, "the background thread did not run: {out}");
    assert_eq!(lines[4], "defined double: calc version 4, kept ticks");
    assert_eq!(lines[5], "63", "the new double was not swapped in: {out}");
    // The counter was carried over, not reset.
    let ticks_after = number(6);
    assert!(ticks_after >= ticks_before, "{out}");
    assert_eq!(lines[7], "defined step: calc version 5, kept ticks");
    // The background thread runs the new step, and its counter continued.
    let last = number(8);
    assert!(last > 1_000_000 + ticks_after, "{out}");
    assert_eq!(lines[9], "-7");
    assert_eq!(lines[10], "-9");
    assert_eq!(lines[11], "error: unknown function `foo`");
    assert_eq!(lines[12], "error: unknown name `y`");
    // The refused definition changed nothing.
    assert_eq!(lines[13], "63");
}
