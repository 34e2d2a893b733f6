//! `smf inspect --json` and the part selectors (`--sections`, `--symbols`, `--imports`,
//! `--relocs`, ...): the JSON parses back to what the text report says, and a selector prints
//! its part alone.
//!
//! Not built for Windows: every test here packs objects of the system C compiler (ELF) into
//! modules for Linux. Windows modules are tested by `windows_programs.rs` and
//! `windows_runtime.rs` (README, "Windows").
#![cfg(unix)]

mod common;

use common::*;
use std::path::{Path, PathBuf};

const SOURCE: &str = r#"
#include <stdio.h>
int counter = 3;
int *counter_address = &counter;          /* a relative relocation to counter */
int (*printer)(const char *) = puts;      /* an import, through a pointer */
__attribute__((constructor)) static void starts(void) { counter++; }
int exported_add(int x) { return x + *counter_address; }
"#;

fn module(dir: &Path) -> PathBuf {
    let source = dir.join("parts.c");
    std::fs::write(&source, SOURCE).unwrap();
    let objects = compile(&[source], dir, &["-O2"]);
    let module = dir.join("parts.smf");
    pack(&objects, &module, &["--needed", "libm.so.6"]);
    module
}

fn inspect(module: &Path, args: &[&str]) -> String {
    let mut command = smf();
    command.arg("inspect").args(args).arg(module);
    String::from_utf8(check(command).stdout).unwrap()
}

#[test]
fn json_parses_back_to_what_the_text_report_says() {
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let text = inspect(&module, &[]);
    let json: serde_json::Value = serde_json::from_str(&inspect(&module, &["--json"])).unwrap();

    let count = |title: &str| -> usize {
        let line = text.lines().find(|l| l.starts_with(title)).unwrap();
        line[title.len() + 2..]
            .split([')', ','])
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let len = |key: &str| {
        json[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}"))
            .len()
    };
    assert_eq!(len("sections"), count("Sections"));
    assert_eq!(len("symbols"), count("Symbols"));
    assert_eq!(len("imports"), count("Imports"));
    assert_eq!(len("relocations"), count("Relocations"));
    assert_eq!(len("constructors"), count("Constructors"));
    assert_eq!(json["needed"], serde_json::json!(["libm.so.6"]));
    assert_eq!(json["header"]["entry_point"], serde_json::Value::Null);
    assert_eq!(json["header"]["version"], "1.0");

    let symbol = json["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "exported_add")
        .expect("exported_add in the symbols");
    assert_eq!(
        (&symbol["kind"], &symbol["binding"]),
        (&"func".into(), &"global".into())
    );
    // Its value, as a number, is the one the text report prints in hex.
    let value = symbol["value"].as_u64().unwrap();
    assert!(text.contains(&format!("{value:#010x}")), "{text}");

    assert!(
        json["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == "puts")
    );
    let relocations = json["relocations"].as_array().unwrap();
    assert!(
        relocations.iter().any(|r| r["import"] == "puts"),
        "{relocations:?}"
    );
    // The pointer to `counter` names it, as the text's `<counter>` does.
    let relative = json["relative_relocations"].as_array().unwrap();
    let listed = relocations.iter().chain(relative).any(|r| {
        r["symbol"] == "counter"
            || r["value"]
                .as_str()
                .is_some_and(|v| v.ends_with("<counter>"))
    });
    assert!(listed, "{relocations:?} {relative:?}");
    assert_eq!(json["constructors"][0]["symbol"], "starts");
}

#[test]
fn selectors_print_their_parts_alone() {
    let work = tempfile::tempdir().unwrap();
    let module = module(work.path());
    let everything = inspect(&module, &[]);

    let sections = inspect(&module, &["--sections"]);
    assert!(sections.starts_with("Sections ("), "{sections}");
    assert!(!sections.contains("SMF header") && !sections.contains("Symbols ("));
    assert!(
        everything.contains(&sections),
        "the same lines as in the full report"
    );

    let two = inspect(&module, &["--imports", "--needed"]);
    assert!(
        two.starts_with("Imports (") && two.contains("\n\nNeeded libraries (1):\n  libm.so.6\n")
    );
    assert!(!two.contains("Relocations ("));

    let relocs = inspect(&module, &["--relocs"]);
    assert!(
        relocs.starts_with("Relocations (") && relocs.contains("puts"),
        "{relocs}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&inspect(&module, &["--json", "--symbols"])).unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["symbols"]);
}

#[test]
fn cxx_names_are_shown_demangled_beside_the_mangled_ones() {
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("names.cpp");
    std::fs::write(
        &source,
        "#include <string>\n\
         int twice(int x) { return 2 * x; }\n\
         long length(const char *s) { std::string copy(s); copy += '!'; return copy.size(); }\n",
    )
    .unwrap();
    let objects = compile_cxx(&[source], work.path(), &["-O2", "-std=c++17"]);
    let module = work.path().join("names.smf");
    pack(&objects, &module, &["--needed", "libstdc++.so.6"]);

    let text = inspect(&module, &["--symbols", "--imports"]);
    assert!(text.contains(" _Z5twicei (twice(int))\n"), "{text}");
    assert!(
        text.contains(" _ZdlPvm (operator delete(void*, unsigned long))\n"),
        "{text}"
    );

    let json: serde_json::Value = serde_json::from_str(&inspect(&module, &["--json"])).unwrap();
    let twice = json["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "_Z5twicei")
        .unwrap();
    assert_eq!(twice["demangled"], "twice(int)");
    let puts_like = json["imports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "_ZdlPvm");
    assert_eq!(
        puts_like.unwrap()["demangled"],
        "operator delete(void*, unsigned long)"
    );
}
