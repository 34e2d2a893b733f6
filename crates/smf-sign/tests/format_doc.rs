//! docs/FORMAT.md, section *Signature files*, against the implementation: the layout table's
//! offsets and sizes, the size of the file, and the bytes of the signed message's prefix.

use smf_sign::{DOMAIN, ModuleSignature, SIGNATURE_FILE_LEN, SecretKey, message};

fn section() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FORMAT.md"))
        .unwrap();
    let start = doc
        .find("## Signature files")
        .expect("FORMAT.md has a Signature files section");
    doc[start..].to_owned()
}

/// The rows of the layout table: (offset, size, field).
fn layout_rows(section: &str) -> Vec<(usize, usize, String)> {
    let table = &section[section.find("### Layout").unwrap()..];
    table
        .lines()
        .filter(|l| l.starts_with("| 0x"))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let offset = usize::from_str_radix(cells[1].trim_start_matches("0x"), 16).unwrap();
            let size = cells[2].parse().unwrap();
            (offset, size, cells[4].trim_matches('`').to_owned())
        })
        .collect()
}

#[test]
fn the_layout_table_is_what_the_writer_writes() {
    let section = section();
    let rows = layout_rows(&section);
    let fields: Vec<&str> = rows.iter().map(|(_, _, f)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "magic",
            "version",
            "algorithm",
            "reserved",
            "public_key",
            "module_hash",
            "signature"
        ]
    );
    // The rows tile the file with no gap.
    let mut next = 0;
    for (offset, size, field) in &rows {
        assert_eq!(*offset, next, "{field} does not follow the previous field");
        next += size;
    }
    assert_eq!(next, SIGNATURE_FILE_LEN);
    assert!(section.contains(&format!(
        "exactly {SIGNATURE_FILE_LEN} (0x{SIGNATURE_FILE_LEN:x}) bytes"
    )));

    let key = SecretKey::from_seed([5; 32]);
    let hash: [u8; 32] = std::array::from_fn(|i| i as u8);
    let signature = key.sign_hash(&hash);
    let bytes = signature.to_bytes();
    let field = |name: &str| {
        let (offset, size, _) = rows.iter().find(|(_, _, f)| f == name).unwrap();
        &bytes[*offset..offset + size]
    };
    assert_eq!(field("magic"), b"SMFSIG\0\0");
    assert_eq!(field("version"), [1]);
    assert_eq!(field("algorithm"), [1]);
    assert_eq!(field("reserved"), [0; 6]);
    assert_eq!(field("public_key"), key.public_key().to_bytes());
    assert_eq!(field("module_hash"), hash);
    assert_eq!(field("signature"), signature.signature);
    assert_eq!(ModuleSignature::parse(&bytes).unwrap(), signature);
}

#[test]
fn the_message_prefix_is_what_the_doc_spells_out() {
    let section = section();
    let hex: String = DOMAIN.iter().map(|b| format!("{b:02x} ")).collect();
    assert!(section.contains(hex.trim_end()), "FORMAT.md lacks {hex}");
    assert!(section.contains("56-byte message"));
    let message = message(&[0xee; 32]);
    assert_eq!(message.len(), 56);
    assert_eq!(&message[..24], b"SMF module signature v1\0");
    assert_eq!(message[24..], [0xee; 32]);
}
