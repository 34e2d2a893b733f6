//! Symbol versions from a GNU ld version script (`smf pack --version-script`).
//!
//! Each version node names a version (`LIBFOO_1.2 { global: foo; bar; };`): the version is
//! the `MAJOR[.MINOR[.PATCH]]` the node's name ends with, and every name listed under its
//! `global:` gets it. That is the only sound source of per-symbol versions in ordinary
//! compiler output, so it is the only one the packer reads. `local:` lists, and the node
//! each node inherits from, change nothing: the packer does not hide symbols by script.

use smf_format::Version;

/// The `(symbol, version)` pairs of the script `text`; `Err` names what it cannot use.
pub fn parse(text: &str) -> Result<Vec<(String, Version)>, String> {
    let tokens = tokenize(text)?;
    let mut out: Vec<(String, Version)> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        // NAME { ... } [PARENT] ;   or an anonymous node   { ... } ;
        let (name, open) = match tokens[i].as_str() {
            "{" => (None, i),
            name => (Some(name), i + 1),
        };
        if tokens.get(open).map(String::as_str) != Some("{") {
            return Err(format!("expected `{{` after {:?}", tokens[i]));
        }
        let version = match name {
            Some(name) => Some(node_version(name)?),
            None => None,
        };
        let mut j = open + 1;
        let mut global = true;
        while tokens.get(j).map(String::as_str) != Some("}") {
            let token = tokens
                .get(j)
                .ok_or("a version node is not closed with `}`")?;
            match token.as_str() {
                "global:" => global = true,
                "local:" => global = false,
                "extern" => return Err("`extern \"C++\"` blocks are not supported".into()),
                ";" => {}
                symbol => {
                    if global {
                        if symbol.contains(['*', '?', '[']) {
                            return Err(format!(
                                "pattern {symbol:?}: only exact names can be given a version"
                            ));
                        }
                        let Some(version) = version else {
                            return Err(format!(
                                "{symbol} is in a node without a name, which gives no version"
                            ));
                        };
                        if let Some((_, other)) = out.iter().find(|(s, _)| s == symbol) {
                            return Err(format!(
                                "{symbol} is given two versions, {other} and {version}"
                            ));
                        }
                        out.push((symbol.to_owned(), version));
                    }
                }
            }
            j += 1;
        }
        j += 1;
        // An optional parent node name, then `;`.
        if tokens.get(j).is_some_and(|t| t != ";") {
            j += 1;
        }
        if tokens.get(j).map(String::as_str) != Some(";") {
            return Err("a version node must end with `;`".into());
        }
        i = j + 1;
    }
    Ok(out)
}

/// The version a node's name ends with: `LIBFOO_1.2` is 1.2.0, `V2` is 2.0.0.
fn node_version(name: &str) -> Result<Version, String> {
    let start = name
        .rfind(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or(0, |i| i + 1);
    let digits = name[start..].trim_matches('.');
    digits
        .parse()
        .map_err(|_| format!("version node {name:?} does not end with a version (such as LIB_1.2)"))
}

/// Words, `{`, `}`, `;` and `global:`/`local:`, without comments.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(tokens);
        }
        if let Some(after) = rest.strip_prefix("/*") {
            let end = after.find("*/").ok_or("a comment is not closed")?;
            rest = &after[end + 2..];
            continue;
        }
        if rest.starts_with('#') {
            rest = rest.find('\n').map_or("", |end| &rest[end..]);
            continue;
        }
        if let Some(c) = rest.chars().next().filter(|c| matches!(c, '{' | '}' | ';')) {
            tokens.push(c.to_string());
            rest = &rest[1..];
            continue;
        }
        let end = rest
            .find(|c: char| c.is_whitespace() || matches!(c, '{' | '}' | ';'))
            .unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        // `global:` may be written `global :`.
        let colon = after.trim_start().strip_prefix(':');
        let word = match colon {
            Some(stripped) if matches!(word, "global" | "local") => {
                rest = stripped;
                format!("{word}:")
            }
            _ => {
                rest = after;
                word.to_owned()
            }
        };
        tokens.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_give_their_versions() {
        let script = "
            /* the first release */
            LIBGEO_1.0 {
              global:
                area;   # a comment
                perimeter;
              local:
                *;
            };
            LIBGEO_1.2 { global: scale; } LIBGEO_1.0;
            V2 { global : rotate; };
        ";
        assert_eq!(
            parse(script).unwrap(),
            vec![
                ("area".into(), Version::new(1, 0, 0)),
                ("perimeter".into(), Version::new(1, 0, 0)),
                ("scale".into(), Version::new(1, 2, 0)),
                ("rotate".into(), Version::new(2, 0, 0)),
            ]
        );
    }

    #[test]
    fn what_it_cannot_use_is_an_error() {
        for (script, problem) in [
            ("LIBGEO { global: a; };", "does not end with a version"),
            ("L_1 { global: a*; };", "only exact names"),
            ("L_1 { global: a; }; L_2 { global: a; };", "two versions"),
            ("{ global: a; };", "without a name"),
            ("L_1 { global: a; }", "must end with `;`"),
            ("L_1 { global: a;", "not closed"),
            ("L_1 { extern \"C++\" { x; }; };", "not supported"),
        ] {
            let error = parse(script).unwrap_err();
            assert!(error.contains(problem), "{script}: {error}");
        }
        assert_eq!(parse("{ local: *; };").unwrap(), vec![]);
    }
}
