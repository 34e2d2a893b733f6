//! The version table (FORMAT.md, *Version table*): what the writer produces, what the reader
//! refuses, and the worked example.

use smf_format::*;

fn example() -> Versions {
    let mut t = Versions::new(Version::new(1, 4, 2));
    t.name = Some("geometry".into());
    assert_eq!(t.index_of(Version::new(1, 1, 0)), 1);
    t.require("math", "^2.1".parse().unwrap());
    t
}

/// A module with two exported functions, `area` of the module's version and `scale` of
/// version `scale_version` (an index into `versions`).
fn module(versions: &Versions, scale_version: u32) -> Result<Vec<u8>, Error> {
    let mut b = ModuleBuilder::new();
    let text = b.add_section(LoadedSection {
        kind: SectionKind::Code,
        name: ".text",
        vaddr: 0,
        mem_size: 2,
        align: 1,
        data: vec![0xc3, 0xc3],
    });
    for (name, value, version) in [("area", 0, 0), ("scale", 1, scale_version)] {
        b.add_symbol(Symbol {
            name,
            kind: SymbolKind::Function,
            binding: Binding::Global,
            visibility: Visibility::Default,
            section: Some(text),
            value,
            size: 1,
            type_id: 0,
            version,
        });
    }
    b.set_versions(versions)?;
    b.write()
}

#[test]
fn versions_read_back_from_a_module() {
    let bytes = module(&example(), 1).unwrap();
    let m = Module::parse(&bytes).unwrap();
    assert_eq!(m.module_version(), Some(Version::new(1, 4, 2)));
    let table = m.versions().unwrap();
    assert_eq!(table.name(), Some("geometry"));
    let deps: Vec<_> = table.dependencies().collect();
    assert_eq!(deps.len(), 1);
    assert_eq!(
        (deps[0].name, deps[0].req.to_string()),
        ("math", "^2.1.0".into())
    );
    let area = m.lookup("area").unwrap();
    let scale = m.lookup("scale").unwrap();
    assert_eq!(m.symbol_version(&area), Some(Version::new(1, 4, 2)));
    assert_eq!(m.symbol_version(&scale), Some(Version::new(1, 1, 0)));
    let mut report = String::new();
    report::write_report(&m, &mut report).unwrap();
    assert!(
        report.contains("Module version: 1.4.2 (geometry)"),
        "{report}"
    );
    assert!(
        report.contains("Needed modules (1):\n  math ^2.1.0"),
        "{report}"
    );
    assert!(report.contains(" 1.1.0 scale"), "{report}");
}

#[test]
fn a_symbol_version_past_the_table_is_refused() {
    let error = module(&example(), 2).unwrap_err().to_string();
    assert!(
        error.contains("symbol 1 (scale): version 2 is past the version table's 2 entries"),
        "{error}"
    );
}

#[test]
fn damaged_tables_are_refused_naming_the_field() {
    let good = example().encode().unwrap();
    let cases: &[(usize, u8, &str)] = &[
        (0x00, 2, "unknown encoding 2"),
        (
            0x04,
            0x40,
            "module name: name offset 0x40 is outside the strings",
        ),
        (0x08, 0, "no version"),
        (0x14, 1, "reserved word"),
        (0x24, 1, "version 0: reserved word"),
        (0x3c, 9, "dependency 0: unknown range operator 9"),
        (0x3d, 1, "dependency 0: reserved bytes"),
        (0x38, 0, "dependency 0: name offset 0x0"),
        (0x50, 1, "strings must start and end with a NUL"),
    ];
    for &(at, value, problem) in cases {
        let mut bad = good.clone();
        bad[at] = value;
        let error = VersionTable::parse(&bad).unwrap_err().to_string();
        assert!(error.contains(problem), "byte {at:#x} = {value}: {error}");
        assert!(error.starts_with("version table"), "{error}");
    }
    // `*` with a version.
    let mut any = Versions::new(Version::new(1, 0, 0));
    any.require("x", VersionReq::ANY);
    let mut bad = any.encode().unwrap();
    bad[0x28 + 0x08] = 1;
    assert!(
        VersionTable::parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("range `*` with a version")
    );
    // A module whose table is damaged does not parse.
    let mut builder = ModuleBuilder::new();
    builder
        .set_opaque(SectionKind::Version, vec![1, 0, 0, 0])
        .unwrap();
    assert!(
        builder
            .write()
            .unwrap_err()
            .to_string()
            .contains("version table")
    );
}

fn dump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, chunk) in bytes.chunks(16).enumerate() {
        let hex: Vec<String> = chunk
            .chunks(2)
            .map(|pair| pair.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        let text: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!("{:08x}: {:<39}  {text}\n", i * 16, hex.join(" ")));
    }
    out
}

#[test]
fn the_format_doc_example_is_what_the_writer_writes() {
    const MARKER: &str = "<!-- version-example -->\n```text\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/FORMAT.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let start = doc.find(MARKER).expect("the example marker") + MARKER.len();
    let end = start + doc[start..].find("```").expect("a closed block");
    let actual = dump(&example().encode().unwrap());
    if std::env::var_os("SMF_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, format!("{}{actual}{}", &doc[..start], &doc[end..])).unwrap();
        return;
    }
    assert_eq!(
        &doc[start..end],
        actual,
        "docs/FORMAT.md's version example differs from the writer's output (SMF_BLESS=1 \
         rewrites it)"
    );
}
