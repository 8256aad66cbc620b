//! Dependencies point one way (ARCHITECTURE "Dependencies point one way"): reads every file
//! under `src/`, collects the `crate::…` (and `super::…` reaching the crate root) paths of
//! each top-level module, and fails
//!
//! - on any import cycle between top-level modules, naming it and where each arrow is;
//! - when `model`, `chainhook`, `protocol` or `ops` reach `store`, `actors`, `routes`, `startup`,
//!   `projections`, or use diesel or actix;
//! - when `client` reaches anything but `protocol`, `model` and the ops rules (`ops`);
//! - when a module that `lib.rs` builds without the `server` feature reaches one that needs it.
//!
//! Comments and string literals are blanked before scanning, so doc links and messages do
//! not count. Test code does not count either: an item under `#[cfg(test)]` is skipped
//! (an inline `mod tests { … }` up to its closing brace, a `mod tests;` together with the
//! file it names, `#[path = …]` included), because test-only imports do not shape the build.
//! Only reads files; no build, no network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Modules that must stay pure: no storage, no runtime, no HTTP.
const PURE: [&str; 4] = ["model", "chainhook", "protocol", "ops"];
/// What the pure modules may not reach.
const ABOVE_PURE: [&str; 5] = ["store", "actors", "routes", "startup", "projections"];
/// The only modules the client shares with the server.
const CLIENT_MAY_USE: [&str; 3] = ["protocol", "model", "ops"];

/// One `crate::…` reference: the top-level module it names and where it is.
#[derive(Debug, Clone, PartialEq)]
struct Reference {
    module: String,
    line: usize,
}

/// A source file and what it references.
struct Scanned {
    /// Path relative to the crate root, for messages.
    path: String,
    /// The top-level module the file belongs to.
    module: String,
    references: Vec<Reference>,
    /// Lines where diesel or actix crates are named.
    server_crates: Vec<(usize, String)>,
}

/// `text` with comments and string/char literals replaced by spaces (newlines kept), so
/// indices and line numbers stay those of the file.
fn blank_comments_and_strings(text: &str) -> Vec<char> {
    blank(text, true)
}

/// `text` as characters, with comments (and, if `strings`, string and char literals)
/// replaced by spaces, newlines kept.
fn blank(text: &str, strings: bool) -> Vec<char> {
    let src: Vec<char> = text.chars().collect();
    let mut out = src.clone();
    let wipe = |out: &mut Vec<char>, from: usize, to: usize, is_literal: bool| {
        if is_literal && !strings {
            return;
        }
        for c in out.iter_mut().take(to).skip(from) {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let mut i = 0;
    while i < src.len() {
        let c = src[i];
        let next = src.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let end = src[i..].iter().position(|&c| c == '\n').map_or(src.len(), |p| i + p);
            wipe(&mut out, i, end, false);
            i = end;
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            let mut j = i;
            while j < src.len() {
                if src[j] == '/' && src.get(j + 1) == Some(&'*') {
                    depth += 1;
                    j += 2;
                } else if src[j] == '*' && src.get(j + 1) == Some(&'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            wipe(&mut out, i, j, false);
            i = j;
        } else if let Some((start, hashes)) = raw_string_start(&src, i) {
            // r"…", r#"…"#, br"…": ends at a quote followed by the same number of #.
            let mut j = start + 1;
            while j < src.len() {
                if src[j] == '"' && (1..=hashes).all(|k| src.get(j + k) == Some(&'#')) {
                    j += hashes + 1;
                    break;
                }
                j += 1;
            }
            wipe(&mut out, i, j, true);
            i = j;
        } else if c == '"' {
            let mut j = i + 1;
            while j < src.len() && src[j] != '"' {
                j += if src[j] == '\\' { 2 } else { 1 };
            }
            wipe(&mut out, i, j + 1, true);
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\''), not a lifetime ('a, 'static).
            if next == Some('\\') {
                let mut j = i + 2;
                while j < src.len() && src[j] != '\'' {
                    j += 1;
                }
                wipe(&mut out, i, j + 1, true);
                i = j + 1;
            } else if src.get(i + 2) == Some(&'\'') {
                wipe(&mut out, i, i + 3, true);
                i += 3;
            } else {
                i += 1;
            }
        } else if is_ident_char(c) {
            // Skip whole identifiers so `br` or `r` inside one never starts a raw string.
            while i < src.len() && is_ident_char(src[i]) {
                i += 1;
            }
        } else {
            i += 1;
        }
    }
    out
}

/// At `i`, the start of a raw string literal: the index of its opening quote and its number
/// of `#`.
fn raw_string_start(src: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if src.get(j) == Some(&'b') {
        j += 1;
    }
    if src.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while src.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (src.get(j) == Some(&'"')).then_some((j, hashes))
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn line_of(code: &[char], at: usize) -> usize {
    code[..at].iter().filter(|&&c| c == '\n').count() + 1
}

fn skip_ws(code: &[char], mut i: usize) -> usize {
    while i < code.len() && code[i].is_whitespace() {
        i += 1;
    }
    i
}

/// The index just past the bracket that closes the one at `open`.
fn matching_close(code: &[char], open: usize) -> usize {
    let (o, c) = match code[open] {
        '{' => ('{', '}'),
        '[' => ('[', ']'),
        _ => ('(', ')'),
    };
    let mut depth = 0usize;
    for (k, &ch) in code.iter().enumerate().skip(open) {
        if ch == o {
            depth += 1;
        } else if ch == c {
            depth -= 1;
            if depth == 0 {
                return k + 1;
            }
        }
    }
    code.len()
}

fn ident_at(code: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i;
    while j < code.len() && is_ident_char(code[j]) {
        j += 1;
    }
    (j > i).then(|| (code[i..j].iter().collect(), j))
}

/// What a `#[cfg(test)]` item is, once skipped.
#[derive(Debug, PartialEq)]
enum TestItem {
    /// `mod NAME;` (with the `#[path]` given, if any): a file of tests elsewhere.
    ModFile { name: String, path_attr: Option<String> },
    /// Anything else, skipped in place.
    Inline,
}

/// Blanks every item under `#[cfg(test)]` in `code` and returns the files they name.
/// `original` is the unblanked text (same indices), to read `#[path = "…"]`.
fn remove_test_items(code: &mut [char], original: &[char]) -> Vec<TestItem> {
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i + marker.len() <= code.len() {
        if code[i..i + marker.len()] != marker[..] {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = skip_ws(code, i + marker.len());
        let mut path_attr = None;
        // Further attributes of the same item.
        while code.get(j) == Some(&'#') && code.get(j + 1) == Some(&'[') {
            let end = matching_close(code, j + 1);
            let attr: String = original[j..end].iter().collect();
            let compact: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
            if let Some(rest) = compact.strip_prefix("#[path=\"") {
                path_attr = rest.strip_suffix("\"]").map(str::to_string);
            }
            j = skip_ws(code, end);
        }
        // The item runs to its first `;` or the end of its first `{ … }` block.
        let item_start = j;
        let mut end = code.len();
        let mut k = j;
        while k < code.len() {
            match code[k] {
                ';' => {
                    end = k + 1;
                    break;
                }
                '{' => {
                    end = matching_close(code, k);
                    break;
                }
                '(' | '[' => k = matching_close(code, k),
                _ => k += 1,
            }
        }
        let head: String = code[item_start..end.min(code.len())].iter().collect();
        let words: Vec<&str> = head.split(|c: char| !is_ident_char(c)).filter(|w| !w.is_empty()).collect();
        let is_mod_decl = head.trim_end().ends_with(';')
            && words.iter().position(|w| *w == "mod").is_some_and(|p| p + 2 == words.len());
        found.push(if is_mod_decl {
            TestItem::ModFile { name: words[words.len() - 1].to_string(), path_attr }
        } else {
            TestItem::Inline
        });
        for c in code.iter_mut().take(end).skip(start) {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = end;
    }
    found
}

/// For each index of `code`, how many inline `mod name { … }` blocks enclose it.
fn inline_module_depth(code: &[char]) -> Vec<usize> {
    let mut depth = vec![0; code.len()];
    let mut i = 0;
    while i < code.len() {
        let starts_word = is_ident_char(code[i]) && (i == 0 || !is_ident_char(code[i - 1]));
        match ident_at(code, i).filter(|_| starts_word) {
            Some((word, after)) => {
                if word == "mod" {
                    let name_at = skip_ws(code, after);
                    if let Some((_, name_end)) = ident_at(code, name_at) {
                        let open = skip_ws(code, name_end);
                        if code.get(open) == Some(&'{') {
                            let close = matching_close(code, open);
                            for d in &mut depth[open..close] {
                                *d += 1;
                            }
                        }
                    }
                }
                i = after;
            }
            None => i += 1,
        }
    }
    depth
}

/// The top-level modules named by `crate::…`/`$crate::…` paths in `code`, and by
/// `super::…` chains that climb to the crate root from a file at depth `depth` (1 for
/// `src/x.rs` and `src/x/mod.rs`, 2 for `src/x/y.rs`, …; inline modules add theirs).
fn references(code: &[char], depth: usize) -> Vec<Reference> {
    let inline = inline_module_depth(code);
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        if !is_ident_char(code[i]) || (i > 0 && is_ident_char(code[i - 1])) {
            i += 1;
            continue;
        }
        let Some((word, after)) = ident_at(code, i) else {
            i += 1;
            continue;
        };
        let preceded_by_path = i >= 2 && code[i - 2..i] == [':', ':'];
        let at_root = match word.as_str() {
            "crate" => Some(after),
            "super" if !preceded_by_path => {
                // Count the chain `super::super::…`.
                let mut levels = 1;
                let mut k = after;
                while code.get(k..k + 2) == Some(&[':', ':']) {
                    match ident_at(code, k + 2) {
                        Some((w, e)) if w == "super" => {
                            levels += 1;
                            k = e;
                        }
                        _ => break,
                    }
                }
                (levels >= depth + inline[i]).then_some(k)
            }
            _ => None,
        };
        if let Some(k) = at_root {
            if code.get(k..k + 2) == Some(&[':', ':']) {
                let k = skip_ws(code, k + 2);
                if code.get(k) == Some(&'{') {
                    // `crate::{a, b::c}`: the first name of each top-level element.
                    let end = matching_close(code, k);
                    let mut level = 0usize;
                    let mut expect_name = true;
                    let mut m = k + 1;
                    while m < end - 1 {
                        match code[m] {
                            '{' => level += 1,
                            '}' => level -= 1,
                            ',' if level == 0 => expect_name = true,
                            c if expect_name && is_ident_char(c) => {
                                if let Some((name, e)) = ident_at(code, m) {
                                    out.push(Reference { module: name, line: line_of(code, m) });
                                    expect_name = false;
                                    m = e;
                                    continue;
                                }
                            }
                            _ => {}
                        }
                        m += 1;
                    }
                } else if let Some((name, _)) = ident_at(code, k) {
                    out.push(Reference { module: name, line: line_of(code, i) });
                }
            }
        }
        i = after;
    }
    out
}

/// Lines naming a diesel or actix crate (`diesel::`, `actix_web::`, `#[diesel(…)]`, …).
fn server_crate_uses(code: &[char]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        if is_ident_char(code[i]) && (i == 0 || !is_ident_char(code[i - 1])) {
            if let Some((word, end)) = ident_at(code, i) {
                if word.starts_with("diesel") || word.starts_with("actix") {
                    out.push((line_of(code, i), word));
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The crate's top-level modules from `lib.rs`, each with whether it is built only with
/// the `server` feature.
fn top_level_modules(lib_rs: &str) -> BTreeMap<String, bool> {
    let code = blank(lib_rs, false);
    let mut modules = BTreeMap::new();
    let mut item_start = 0;
    for (end, _) in code.iter().enumerate().filter(|(_, &c)| c == ';') {
        let item: String = code[item_start..end].iter().collect();
        let words: Vec<&str> = item.split(|c: char| !is_ident_char(c)).filter(|w| !w.is_empty()).collect();
        if words.last().is_some() && words.len() >= 2 && words[words.len() - 2] == "mod" {
            let compact: String = item.chars().filter(|c| !c.is_whitespace()).collect();
            let server_only = compact.contains("#[cfg(feature=\"server\")]");
            modules.insert(words[words.len() - 1].to_string(), server_only);
        }
        item_start = end + 1;
    }
    modules
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module path of a file under `src/`: `src/a/b.rs` → [a, b]; `src/a/mod.rs` → [a].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_string();
        if stem != "mod" {
            parts.push(stem);
        }
    }
    parts
}

/// Reads `src/`, skipping test code, and scans every file of a top-level module.
fn scan_crate(src: &Path) -> (BTreeMap<String, bool>, Vec<Scanned>) {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let modules = top_level_modules(&lib);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut test_files: BTreeSet<PathBuf> = BTreeSet::new();
    let mut parsed = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        let original: Vec<char> = text.chars().collect();
        let mut code = blank_comments_and_strings(&text);
        let rel = file.strip_prefix(src).expect("under src").to_path_buf();
        // Where `mod x;` looks for x: beside a mod.rs/lib.rs, else in a folder named
        // after the file; `#[path]` is relative to the file's own folder.
        let folder = file.parent().expect("in a folder").to_path_buf();
        let children = match file.file_name().and_then(|n| n.to_str()) {
            Some("mod.rs" | "lib.rs" | "main.rs") => folder.clone(),
            _ => folder.join(file.file_stem().expect("file stem")),
        };
        for item in remove_test_items(&mut code, &original) {
            if let TestItem::ModFile { name, path_attr } = item {
                match path_attr {
                    Some(p) => {
                        test_files.insert(folder.join(p));
                    }
                    None => {
                        test_files.insert(children.join(format!("{name}.rs")));
                        test_files.insert(children.join(&name).join("mod.rs"));
                    }
                }
            }
        }
        parsed.push((file.clone(), rel, code));
    }
    let mut scanned = Vec::new();
    for (file, rel, code) in parsed {
        let path = module_path(&rel);
        let is_test = test_files.iter().any(|t| file == *t || t.file_name().is_some_and(|n| n == "mod.rs") && file.starts_with(t.parent().expect("folder")));
        // lib.rs and main.rs are the crate roots, not modules.
        let Some(module) = path.first().filter(|m| modules.contains_key(*m)).cloned() else {
            continue;
        };
        if is_test {
            continue;
        }
        let references = references(&code, path.len())
            .into_iter()
            .filter(|r| r.module != module && modules.contains_key(&r.module))
            .collect();
        scanned.push(Scanned {
            path: format!("src/{}", rel.display()),
            module,
            references,
            server_crates: server_crate_uses(&code),
        });
    }
    (modules, scanned)
}

/// The module graph: for each arrow, the first place it is drawn.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn graph(scanned: &[Scanned]) -> Graph {
    let mut g = Graph::new();
    for file in scanned {
        let arrows = g.entry(file.module.clone()).or_default();
        for r in &file.references {
            arrows.entry(r.module.clone()).or_insert_with(|| format!("{}:{}", file.path, r.line));
        }
    }
    g
}

/// Every cycle met by a depth-first search, each as the modules along it, first repeated
/// at the end.
fn cycles(g: &Graph) -> Vec<Vec<String>> {
    fn visit(node: &str, g: &Graph, stack: &mut Vec<String>, done: &mut BTreeSet<String>, found: &mut Vec<Vec<String>>) {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(node.to_string());
            found.push(cycle);
            return;
        }
        if done.contains(node) {
            return;
        }
        stack.push(node.to_string());
        if let Some(arrows) = g.get(node) {
            for next in arrows.keys() {
                visit(next, g, stack, done, found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in g.keys() {
        visit(node, g, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

fn describe(cycle: &[String], g: &Graph) -> String {
    let steps: Vec<String> = cycle
        .windows(2)
        .map(|w| format!("{} -> {} ({})", w[0], w[1], g[&w[0]][&w[1]]))
        .collect();
    format!("import cycle {}: {}", cycle.join(" -> "), steps.join(", "))
}

/// Everything that breaks the rules of the module header, one line each.
fn violations(modules: &BTreeMap<String, bool>, scanned: &[Scanned]) -> Vec<String> {
    let g = graph(scanned);
    let mut out: Vec<String> = cycles(&g).iter().map(|c| describe(c, &g)).collect();
    for file in scanned {
        let m = file.module.as_str();
        for r in &file.references {
            let to = r.module.as_str();
            let at = format!("{}:{}", file.path, r.line);
            if PURE.contains(&m) && ABOVE_PURE.contains(&to) {
                out.push(format!("{m} must not import {to} ({at})"));
            }
            if m == "client" && !CLIENT_MAY_USE.contains(&to) {
                out.push(format!("client shares only {CLIENT_MAY_USE:?} with the server, yet imports {to} ({at})"));
            }
            if !modules[m] && modules[to] {
                out.push(format!("{m} is built without the `server` feature but imports {to}, which needs it ({at})"));
            }
        }
        if PURE.contains(&m) || m == "client" {
            for (line, word) in &file.server_crates {
                out.push(format!("{m} must not use {word} ({}:{line})", file.path));
            }
        }
    }
    out
}

#[test]
fn dependencies_point_one_way() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let (modules, scanned) = scan_crate(&src);
    // The scan must see the crate it checks, or every rule passes vacuously.
    for m in ["model", "chainhook", "protocol", "client", "store", "actors", "routes", "startup"] {
        assert!(modules.contains_key(m), "lib.rs declares no module {m}");
        assert!(scanned.iter().any(|f| f.module == m), "no file of {m} was scanned");
    }
    let g = graph(&scanned);
    assert!(g["routes"].contains_key("actors"), "the scan misses routes -> actors: {g:?}");
    let problems = violations(&modules, &scanned);
    assert!(problems.is_empty(), "dependencies against the layering:\n{}", problems.join("\n"));
}

// The scanner itself, on inputs where the answer is known.

fn refs_of(text: &str, depth: usize) -> Vec<String> {
    let original: Vec<char> = text.chars().collect();
    let mut code = blank_comments_and_strings(text);
    remove_test_items(&mut code, &original);
    references(&code, depth).into_iter().map(|r| r.module).collect()
}

#[test]
fn paths_are_found_in_uses_groups_and_expressions() {
    let text = "use crate::{store::{Store, StoreError}, model};\n\
                use crate::actors::Ingest;\n\
                fn f() { let _ = crate::routes::not_found(); $crate::config::X }\n";
    assert_eq!(refs_of(text, 1), ["store", "model", "actors", "routes", "config"]);
}

#[test]
fn comments_strings_and_test_code_are_not_imports() {
    let text = "//! See [`crate::store`].\n\
                /* crate::actors /* nested */ crate::routes */\n\
                const S: &str = \"crate::startup\";\n\
                const R: &str = r#\"crate::cli \"quoted\" \"#;\n\
                fn f<'a>(x: &'a str) -> char { '\"' }\n\
                use crate::model::Payload;\n\
                #[cfg(test)]\n\
                mod tests { use crate::store::Store; fn g() { if true { crate::actors::x(); } } }\n\
                #[cfg(test)]\n\
                use crate::projections::Engine;\n\
                use crate::chainhook::parse_payload;\n";
    assert_eq!(refs_of(text, 1), ["model", "chainhook"]);
}

#[test]
fn super_reaches_the_root_only_from_the_top_level_file() {
    let text = "use super::store::Store;\nuse super::super::actors::Ingest;\npub(super) fn f() {}\n";
    // From src/cli.rs `super` is the crate root; from src/cli/tail.rs it takes two.
    assert_eq!(refs_of(text, 1), ["store", "actors"]);
    assert_eq!(refs_of(text, 2), ["actors"]);
    // Inside an inline module, one more `super` is needed.
    let nested = "mod inner { use super::store::Store; use super::super::actors::Ingest; }\n";
    assert_eq!(refs_of(nested, 1), ["actors"]);
}

#[test]
fn test_module_files_are_named_with_or_without_a_path() {
    let text = "#[cfg(test)]\n#[path = \"registry_tests.rs\"]\nmod tests;\n#[cfg(test)]\nmod fixture_tests;\nmod real;\n";
    let original: Vec<char> = text.chars().collect();
    let mut code = blank_comments_and_strings(text);
    let items = remove_test_items(&mut code, &original);
    assert_eq!(
        items,
        [
            TestItem::ModFile { name: "tests".into(), path_attr: Some("registry_tests.rs".into()) },
            TestItem::ModFile { name: "fixture_tests".into(), path_attr: None },
        ]
    );
    assert!(code.iter().collect::<String>().contains("mod real;"));
}

#[test]
fn a_cycle_is_named_with_where_each_arrow_is() {
    let file = |module: &str, to: &[&str]| Scanned {
        path: format!("src/{module}.rs"),
        module: module.into(),
        references: to.iter().map(|m| Reference { module: m.to_string(), line: 3 }).collect(),
        server_crates: vec![],
    };
    let scanned = [file("routes", &["startup", "actors"]), file("startup", &["routes"]), file("actors", &[])];
    let modules: BTreeMap<String, bool> = ["routes", "startup", "actors"].iter().map(|m| (m.to_string(), true)).collect();
    assert_eq!(
        violations(&modules, &scanned),
        ["import cycle routes -> startup -> routes: routes -> startup (src/routes.rs:3), startup -> routes (src/startup.rs:3)"]
    );
    let acyclic = [file("routes", &["actors"]), file("startup", &["routes"]), file("actors", &[])];
    assert!(violations(&modules, &acyclic).is_empty());
}

#[test]
fn pure_and_client_only_modules_are_held_to_their_rules() {
    let code = blank_comments_and_strings("use diesel::prelude::*;\n#[derive(actix::Message)]\nstruct M;\n");
    let scanned = [
        Scanned {
            path: "src/protocol.rs".into(),
            module: "protocol".into(),
            references: vec![Reference { module: "store".into(), line: 1 }],
            server_crates: server_crate_uses(&code),
        },
        Scanned {
            path: "src/client/mod.rs".into(),
            module: "client".into(),
            references: vec![Reference { module: "synth".into(), line: 2 }],
            server_crates: vec![],
        },
    ];
    let modules: BTreeMap<String, bool> =
        [("protocol", false), ("client", false), ("store", true), ("synth", false)].iter().map(|(m, s)| (m.to_string(), *s)).collect();
    assert_eq!(
        violations(&modules, &scanned),
        [
            "protocol must not import store (src/protocol.rs:1)",
            "protocol is built without the `server` feature but imports store, which needs it (src/protocol.rs:1)",
            "protocol must not use diesel (src/protocol.rs:1)",
            "protocol must not use actix (src/protocol.rs:2)",
            "client shares only [\"protocol\", \"model\", \"ops\"] with the server, yet imports synth (src/client/mod.rs:2)",
        ]
    );
}

#[test]
fn lib_rs_tells_which_modules_need_the_server_feature() {
    let lib = "//! docs: mod fake;\npub mod model;\n#[cfg(feature = \"server\")]\npub mod store;\nmod client;\n";
    let modules = top_level_modules(lib);
    assert_eq!(modules.into_iter().collect::<Vec<_>>(), [("client".into(), false), ("model".into(), false), ("store".into(), true)]);
}
