//! `@FILE` arguments: a linker command line too long for the system, kept in a file.
//!
//! Build systems (cargo among them, when a command line grows past the system's limit) pass
//! a linker `@FILE` and put the arguments in FILE. GNU ld reads it with libiberty's
//! `expandargv`: the argument `@FILE` is replaced by the arguments in FILE, which may hold
//! `@FILE` arguments themselves; if FILE cannot be read, `@FILE` stays as it is.

use std::ffi::OsString;
use std::path::Path;

use crate::error::Error;

/// How deep response files may include each other; past it, one surely includes itself.
const MAX_DEPTH: usize = 64;

/// Replaces every `@FILE` argument by the arguments FILE holds (see [`split`]), recursively.
/// An `@FILE` whose file cannot be read is kept, as GNU ld keeps it.
pub fn expand(args: impl IntoIterator<Item = OsString>) -> Result<Vec<OsString>, Error> {
    let mut expanded = Vec::new();
    for arg in args {
        expand_one(arg, 0, &mut expanded)?;
    }
    Ok(expanded)
}

fn expand_one(arg: OsString, depth: usize, out: &mut Vec<OsString>) -> Result<(), Error> {
    let file = match arg.to_str().and_then(|a| a.strip_prefix('@')) {
        Some(file) if !file.is_empty() => file.to_owned(),
        _ => {
            out.push(arg);
            return Ok(());
        }
    };
    let Ok(bytes) = std::fs::read(Path::new(&file)) else {
        out.push(arg);
        return Ok(());
    };
    let error = |problem: &str| Error::Object {
        file: format!("@{file}"),
        problem: problem.to_owned(),
    };
    if depth >= MAX_DEPTH {
        return Err(error(&format!(
            "response files nest more than {MAX_DEPTH} deep (does one include itself?)"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| error("is not valid UTF-8"))?;
    for inner in split(&text) {
        expand_one(inner.into(), depth + 1, out)?;
    }
    Ok(())
}

/// Splits the text of a response file into arguments by libiberty's `buildargv` rules:
/// whitespace separates arguments; a backslash takes the next character as it is, also
/// inside quotes; single and double quotes group characters, whitespace included, and may
/// start or end in the middle of an argument; `''` and `""` make an empty argument.
pub fn split(text: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return args;
        }
        let mut arg = String::new();
        let mut quote = None;
        while let Some(c) = chars.next() {
            match (c, quote) {
                ('\\', _) => {
                    if let Some(next) = chars.next() {
                        arg.push(next);
                    }
                }
                (c, None) if c.is_whitespace() => break,
                ('\'' | '"', None) => quote = Some(c),
                (c, Some(open)) if c == open => quote = None,
                (c, _) => arg.push(c),
            }
        }
        args.push(arg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_by_gnu_rules() {
        assert_eq!(split(""), Vec::<String>::new());
        assert_eq!(split(" \n\t "), Vec::<String>::new());
        assert_eq!(split("a  b\nc\td"), ["a", "b", "c", "d"]);
        assert_eq!(split("'a b' \"c d\""), ["a b", "c d"]);
        assert_eq!(split("x'a b'y"), ["xa by"]);
        assert_eq!(split("'' \"\" z"), ["", "", "z"]);
        assert_eq!(split(r"a\ b c\\d"), ["a b", r"c\d"]);
        assert_eq!(split(r#"'it\'s' "say \"hi\"""#), ["it's", r#"say "hi""#]);
        assert_eq!(split(r#"'"' "'""#), ["\"", "'"]);
        assert_eq!(split("-L/usr/lib\r\n-lfoo\r\n"), ["-L/usr/lib", "-lfoo"]);
    }

    #[test]
    fn expands_nested_files_and_keeps_unreadable_ones() {
        let dir = std::env::temp_dir().join(format!("smf-pack-rsp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let inner = dir.join("inner.rsp");
        let outer = dir.join("outer.rsp");
        // A backslash in a response file escapes the next character, as for gcc (also
        // mingw-w64's): Windows paths written into one are escaped.
        let escaped = |path: &std::path::Path| path.display().to_string().replace('\\', "\\\\");
        std::fs::write(&inner, "'b c' d").unwrap();
        std::fs::write(&outer, format!("a @{}\ne", escaped(&inner))).unwrap();
        let missing = format!("@{}", dir.join("missing.rsp").display());
        let args = expand([
            OsString::from("x"),
            OsString::from(format!("@{}", outer.display())),
            OsString::from(&missing),
            OsString::from("@"),
        ])
        .unwrap();
        assert_eq!(args, ["x", "a", "b c", "d", "e", missing.as_str(), "@"]);

        let looping = dir.join("loop.rsp");
        std::fs::write(&looping, format!("@{}", escaped(&looping))).unwrap();
        let error = expand([OsString::from(format!("@{}", looping.display()))])
            .unwrap_err()
            .to_string();
        assert!(error.contains("nest more than 64 deep"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
