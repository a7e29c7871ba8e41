//! The shape of `src/`, checked: every import points down the layers that docs/architecture.md's "How it is
//! built" lists, no two files import each other round a cycle, no file is over 600 lines and no
//! function over 80. A change that breaks one of these fails here, naming the file and line.
//!
//! The reader is a small Rust lexer (comments, strings, chars and lifetimes), enough to find
//! `use` trees, inline `crate::` / `super::` paths and function bodies; it does not compile.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

// ------------------------------------------------------------------------------------ lexing

/// The source with comments, string and char literals blanked (newlines kept, so line numbers
/// hold); lifetimes are left as they are.
fn blank_literals(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let keep_newlines = |out: &mut Vec<u8>, s: &[u8]| out.extend(s.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
            keep_newlines(&mut out, &b[i..end]);
            i = end;
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let (mut depth, mut j) = (1, i + 2);
            while j < b.len() && depth > 0 {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                } else {
                    j += 1;
                }
            }
            keep_newlines(&mut out, &b[i..j]);
            i = j;
        } else if let Some(end) = raw_string_end(b, i) {
            keep_newlines(&mut out, &b[i..end]);
            i = end;
        } else if c == b'"' || (c == b'b' && b.get(i + 1) == Some(&b'"') && !ident_byte(i.checked_sub(1).map(|p| b[p]))) {
            let mut j = if c == b'b' { i + 2 } else { i + 1 };
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            keep_newlines(&mut out, &b[i..(j + 1).min(b.len())]);
            i = j + 1;
        } else if c == b'\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): a literal closes at once.
            let close = if b.get(i + 1) == Some(&b'\\') {
                b.get(i + 3..).and_then(|r| r.iter().position(|&c| c == b'\'')).map(|p| i + 3 + p)
            } else {
                let ch_len = src.get(i + 1..).and_then(|s| s.chars().next()).map_or(1, |ch| ch.len_utf8());
                (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
            };
            match close {
                Some(j) => {
                    keep_newlines(&mut out, &b[i..=j]);
                    i = j + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps ASCII structure")
}

fn ident_byte(c: Option<u8>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// The end of a raw string (`r"..."`, `r#"..."#`, `br#"..."#`) starting at `i`.
fn raw_string_end(b: &[u8], i: usize) -> Option<usize> {
    if ident_byte(i.checked_sub(1).map(|p| b[p])) {
        return None;
    }
    let mut j = i;
    if b.get(j) == Some(&b'b') {
        j += 1;
    }
    if b.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
    j += hashes;
    if b.get(j) != Some(&b'"') {
        return None;
    }
    let closing: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
    let body = j + 1;
    b[body..].windows(closing.len()).position(|w| w == closing.as_slice()).map(|p| body + p + closing.len())
}

/// Index of the brace closing the one at `open`.
fn matching_brace(s: &[u8], open: usize) -> usize {
    let mut depth = 0;
    for (k, &c) in s.iter().enumerate().skip(open) {
        match c {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    s.len() - 1
}

fn line_of(s: &str, at: usize) -> usize {
    s.as_bytes()[..at].iter().filter(|&&c| c == b'\n').count() + 1
}

/// Words of `s` (identifiers, `::`, and single punctuation bytes) with their byte offsets.
fn tokens(s: &str) -> Vec<(usize, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if ident_byte(Some(c)) {
            let start = i;
            while i < b.len() && ident_byte(Some(b[i])) {
                i += 1;
            }
            out.push((start, &s[start..i]));
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            out.push((i, "::"));
            i += 2;
        } else {
            out.push((i, &s[i..i + 1]));
            i += 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------------- the tree

struct SourceFile {
    path: PathBuf,
    /// Module path from the crate root (`["engine", "run"]`); `["main"]` for the binary root.
    module: Vec<String>,
    /// Literals blanked; test-only blocks blanked too.
    code: String,
    lines: usize,
    /// Declared `#[cfg(test)] mod x;` elsewhere: a test file.
    test_only: bool,
    /// Part of the binary (main.rs and the modules it declares), not of the library.
    binary: bool,
}

fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs").to_string();
    if stem != "mod" && !(parts.is_empty() && stem == "lib") {
        parts.push(stem);
    }
    parts
}

/// Byte ranges of `#[cfg(test)]` items (`mod tests { ... }`, functions), and the names of
/// `#[cfg(test)] mod x;` declarations.
fn test_blocks(code: &str) -> (Vec<(usize, usize)>, Vec<String>) {
    let b = code.as_bytes();
    let (mut ranges, mut declared) = (Vec::new(), Vec::new());
    let mut from = 0;
    while let Some(p) = code[from..].find("#[cfg(test)]") {
        let at = from + p;
        let rest = &code[at + "#[cfg(test)]".len()..];
        let next_semi = rest.find(';').unwrap_or(rest.len());
        let next_brace = rest.find('{').unwrap_or(rest.len());
        if next_semi < next_brace {
            let decl: Vec<&str> = rest[..next_semi].split_whitespace().collect();
            if let Some(k) = decl.iter().position(|w| *w == "mod") {
                if let Some(name) = decl.get(k + 1) {
                    declared.push(name.to_string());
                }
            }
            from = at + 1;
        } else if next_brace < rest.len() {
            let open = at + "#[cfg(test)]".len() + next_brace;
            let close = matching_brace(b, open);
            ranges.push((at, close + 1));
            from = close + 1;
        } else {
            break;
        }
    }
    (ranges, declared)
}

fn blank_ranges(code: &str, ranges: &[(usize, usize)]) -> String {
    let mut b = code.as_bytes().to_vec();
    for &(s, e) in ranges {
        for c in &mut b[s..e] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    }
    String::from_utf8(b).expect("ASCII blanks")
}

/// Other binaries (`src/bin/<name>/`) are crates of their own over the library: the top layer.
fn in_src_bin(f: &SourceFile) -> bool {
    f.module.first().is_some_and(|m| m == "bin")
}

fn read_tree(src: &Path) -> Vec<SourceFile> {
    let mut paths = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                paths.push(p);
            }
        }
    }
    paths.sort();
    let mut files: Vec<SourceFile> = paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let rel = path.strip_prefix(src).unwrap();
            let module = module_of(rel);
            let code = blank_literals(&text);
            SourceFile { lines: text.lines().count(), module, code, path, test_only: false, binary: false }
        })
        .collect();
    let mut test_modules = BTreeSet::new();
    for f in &mut files {
        let (ranges, declared) = test_blocks(&f.code);
        for name in declared {
            // `mod x;` in a.rs and in a/mod.rs both declare a::x.
            let mut m = f.module.clone();
            m.push(name);
            test_modules.insert(m);
        }
        f.code = blank_ranges(&f.code, &ranges);
    }
    // The binary's own modules (`mod cli;` in main.rs) sit in its layer, `main`.
    let bin_modules: Vec<String> = files
        .iter()
        .filter(|f| f.path.ends_with("main.rs") && !in_src_bin(f))
        .flat_map(|f| {
            let toks = tokens(&f.code);
            let names: Vec<String> = toks.windows(3).filter(|w| w[0].1 == "mod" && w[2].1 == ";").map(|w| w[1].1.to_string()).collect();
            names
        })
        .collect();
    for f in &mut files {
        f.test_only = test_modules.iter().any(|t| f.module.starts_with(t));
        let other_binary = in_src_bin(f);
        let crate_main = f.path.ends_with("main.rs") && !other_binary;
        f.binary = crate_main || other_binary || f.module.first().is_some_and(|m| bin_modules.contains(m));
        if crate_main {
            f.module = vec!["main".into()];
        }
    }
    files
}

// --------------------------------------------------------------------------------- imports

/// Paths named by one `use` tree, each as segments (`use a::{b, c::d}` gives `a::b`, `a::c::d`).
fn expand_use(toks: &[&str]) -> Vec<Vec<String>> {
    fn walk(toks: &[&str], i: &mut usize, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        let mut path = prefix;
        while *i < toks.len() {
            match toks[*i] {
                "::" => *i += 1,
                "{" => {
                    *i += 1;
                    loop {
                        if toks.get(*i) == Some(&"}") {
                            *i += 1;
                            return;
                        }
                        walk(toks, i, path.clone(), out);
                        match toks.get(*i) {
                            Some(&",") => *i += 1,
                            Some(&"}") => {
                                *i += 1;
                                return;
                            }
                            _ => return,
                        }
                    }
                }
                "," | "}" => break,
                "as" => {
                    *i += 2;
                    break;
                }
                "*" => {
                    *i += 1;
                    path.push("*".into());
                    break;
                }
                w => {
                    path.push(w.to_string());
                    *i += 1;
                }
            }
        }
        out.push(path);
    }
    let mut out = Vec::new();
    let mut i = 0;
    walk(toks, &mut i, Vec::new(), &mut out);
    out
}

/// A path as written in `file`, made absolute from the crate root (`None`: another crate).
fn absolute(file: &SourceFile, children: &BTreeSet<Vec<String>>, path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    // `super` in a.rs and in a/mod.rs both mean a's parent.
    let mut base = file.module.clone();
    if file.module == ["main"] {
        base.clear();
    }
    match first.as_str() {
        "crate" | "ayt" => Some(path[1..].to_vec()),
        "self" => Some([base, path[1..].to_vec()].concat()),
        "super" => {
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            Some([base, rest.to_vec()].concat())
        }
        _ => {
            let mut child = base.clone();
            child.push(first.clone());
            children.contains(&child).then(|| [base, path.to_vec()].concat())
        }
    }
}

struct Graph {
    modules: BTreeMap<Vec<String>, usize>,
    /// Per mod.rs / lib.rs: re-exported name -> where it really lives.
    reexports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
}

impl Graph {
    /// The file a path lands in, following `pub use` re-exports of folder modules.
    fn resolve(&self, path: &[String], depth: usize) -> Option<usize> {
        let n = (1..=path.len()).rev().find(|&n| self.modules.contains_key(&path[..n]))?;
        let module = &path[..n];
        if depth < 8 && n < path.len() {
            if let Some(map) = self.reexports.get(module) {
                let name = &path[n];
                let target = map
                    .get(name)
                    .or_else(|| map.get("*").filter(|_| !self.modules.contains_key(&[module, std::slice::from_ref(name)].concat())));
                if let Some(t) = target {
                    let full: Vec<String> = if t.last().is_some_and(|s| s == "*") {
                        [&t[..t.len() - 1], &path[n..]].concat()
                    } else {
                        [t.as_slice(), &path[n + 1..]].concat()
                    };
                    if let Some(f) = self.resolve(&full, depth + 1) {
                        return Some(f);
                    }
                }
            }
        }
        self.modules.get(module).copied()
    }
}

/// `(line, path)` of every `use` tree in `code` that is `pub use` (`true`) or private.
fn use_trees(code: &str) -> Vec<(usize, bool, Vec<Vec<String>>)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut k = 0;
    while k < toks.len() {
        if toks[k].1 == "use" && (k == 0 || matches!(toks[k - 1].1, ";" | "}" | "{" | ")" | "]" | "pub")) {
            let public = k > 0 && (toks[k - 1].1 == "pub" || toks[k - 1].1 == ")");
            let end = (k..toks.len()).find(|&j| toks[j].1 == ";").unwrap_or(toks.len());
            let words: Vec<&str> = toks[k + 1..end].iter().map(|t| t.1).collect();
            out.push((line_of(code, toks[k].0), public, expand_use(&words)));
            k = end;
        }
        k += 1;
    }
    out
}

/// Inline paths (`crate::a::b`, `super::x`, `ayt::y`) outside `use` items.
fn inline_paths(code: &str) -> Vec<(usize, Vec<String>)> {
    let toks = tokens(code);
    let mut out = Vec::new();
    let mut in_use = false;
    let mut k = 0;
    while k < toks.len() {
        let w = toks[k].1;
        if w == "use" {
            in_use = true;
        } else if w == ";" {
            in_use = false;
        } else if !in_use
            && matches!(w, "crate" | "super" | "ayt")
            && toks.get(k + 1).is_some_and(|t| t.1 == "::")
            && (k == 0 || toks[k - 1].1 != "::")
        {
            let mut path = vec![w.to_string()];
            let mut j = k + 1;
            while toks.get(j).is_some_and(|t| t.1 == "::") && toks.get(j + 1).is_some_and(|t| ident_byte(t.1.bytes().next())) {
                path.push(toks[j + 1].1.to_string());
                j += 2;
            }
            out.push((line_of(code, toks[k].0), path));
            k = j;
            continue;
        }
        k += 1;
    }
    out
}

/// Edges `file -> (file, line)` of the non-test code of `src/`.
fn import_graph(files: &[SourceFile]) -> (Graph, Vec<BTreeMap<usize, usize>>) {
    let modules: BTreeMap<Vec<String>, usize> = files.iter().enumerate().map(|(i, f)| (f.module.clone(), i)).collect();
    let children: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let mut graph = Graph { modules, reexports: BTreeMap::new() };
    for f in files.iter().filter(|f| !f.test_only) {
        let mut map = BTreeMap::new();
        for (_, public, paths) in use_trees(&f.code) {
            for p in paths.into_iter().filter(|_| public) {
                if let (Some(abs), Some(name)) = (absolute(f, &children, &p), p.last()) {
                    map.insert(name.clone(), abs);
                }
            }
        }
        graph.reexports.insert(f.module.clone(), map);
    }
    let mut edges = vec![BTreeMap::new(); files.len()];
    for (i, f) in files.iter().enumerate().filter(|(_, f)| !f.test_only) {
        let uses =
            use_trees(&f.code).into_iter().filter(|(_, public, _)| !public).flat_map(|(l, _, ps)| ps.into_iter().map(move |p| (l, p)));
        for (line, p) in uses.chain(inline_paths(&f.code)) {
            let Some(abs) = absolute(f, &children, &p) else { continue };
            if let Some(j) = graph.resolve(&abs, 0).filter(|&j| j != i) {
                edges[i].entry(j).or_insert(line);
            }
        }
    }
    (graph, edges)
}

/// Strongly connected components with more than one file (Tarjan).
fn cycles(edges: &[BTreeMap<usize, usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        edges: &'a [BTreeMap<usize, usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in s.edges[v].keys() {
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                _ => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                s.out.push(comp);
            }
        }
    }
    let n = edges.len();
    let mut s =
        State { edges, index: vec![None; n], low: vec![0; n], on_stack: vec![false; n], stack: Vec::new(), next: 0, out: Vec::new() };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// `(first line, lines, name)` of every function body in `code`.
fn functions(code: &str) -> Vec<(usize, usize, String)> {
    let toks = tokens(code);
    let b = code.as_bytes();
    let mut out = Vec::new();
    for k in 0..toks.len() {
        if toks[k].1 != "fn" || !toks.get(k + 1).is_some_and(|t| ident_byte(t.1.bytes().next())) {
            continue;
        }
        // The body opens at the first `{` outside parentheses and angle brackets; a `;` first is a
        // declaration without a body.
        let (mut paren, mut angle) = (0i32, 0i32);
        let mut body = None;
        for t in &toks[k + 2..] {
            match t.1 {
                "(" => paren += 1,
                ")" => paren -= 1,
                "<" => angle += 1,
                ">" if angle > 0 && !code[..t.0].ends_with('-') => angle -= 1,
                "{" if paren == 0 && angle == 0 => {
                    body = Some(t.0);
                    break;
                }
                ";" if paren == 0 && angle == 0 => break,
                _ => {}
            }
        }
        if let Some(open) = body {
            let close = matching_brace(b, open);
            let first = line_of(code, toks[k].0);
            out.push((first, line_of(code, close) - first + 1, toks[k + 1].1.to_string()));
        }
    }
    out
}

// ------------------------------------------------------------------------------ the layers

/// The layers docs/architecture.md's "How it is built" lists, bottom first: the lines of the fenced block after
/// `Layers, bottom up`, each `N. module module ...   what they are for`.
fn readme_layers(root: &Path) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let start = readme.find("Layers, bottom up").expect("docs/architecture.md: no \"Layers, bottom up\" block under \"How it is built\"");
    let block = &readme[start..];
    let open = block.find("```").expect("docs/architecture.md: the layers block is fenced") + 3;
    let body = &block[open..];
    let body = &body[body.find('\n').unwrap() + 1..body[1..].find("```").unwrap() + 1];
    body.lines()
        .filter_map(|l| l.split_once(". "))
        // The modules, then (after two or more spaces) what the layer is for.
        .map(|(_, rest)| rest.split("  ").next().unwrap_or("").split_whitespace().map(str::to_string).collect())
        .collect()
}

fn src_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn imports_point_down_the_readme_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = read_tree(&src_root());
    let layers = readme_layers(root);
    let layer_of: BTreeMap<String, usize> = layers.iter().enumerate().flat_map(|(i, ms)| ms.iter().map(move |m| (m.clone(), i))).collect();
    let top = |f: &SourceFile| if f.binary { "main".to_string() } else { f.module.first().cloned().unwrap_or_else(|| "lib".into()) };
    let mut problems = Vec::new();
    // lib.rs only declares the modules.
    for f in files.iter().filter(|f| !f.test_only && !f.module.is_empty()) {
        if !layer_of.contains_key(&top(f)) {
            problems.push(format!("{}: module `{}` is in no layer of docs/architecture.md", f.path.display(), top(f)));
        }
    }
    let (_, edges) = import_graph(&files);
    for (i, targets) in edges.iter().enumerate() {
        for (&j, &line) in targets {
            let (a, b) = (top(&files[i]), top(&files[j]));
            if let (Some(la), Some(lb)) = (layer_of.get(&a), layer_of.get(&b)) {
                if lb > la {
                    problems.push(format!(
                        "{}:{line}: `{a}` (layer {}) imports `{}` (layer {})",
                        files[i].path.strip_prefix(root).unwrap().display(),
                        la + 1,
                        files[j].module.join("::"),
                        lb + 1
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{} upward imports:\n  {}", problems.len(), problems.join("\n  "));
}

#[test]
fn no_import_cycles_between_files() {
    let files = read_tree(&src_root());
    let (_, edges) = import_graph(&files);
    let found: Vec<String> = cycles(&edges)
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c.iter().map(|&i| files[i].module.join("::")).collect();
            names.sort();
            format!("{} files: {}", names.len(), names.join(", "))
        })
        .collect();
    assert!(found.is_empty(), "{} import cycles:\n  {}", found.len(), found.join("\n  "));
}

#[test]
fn no_source_file_over_600_lines_and_no_function_over_80() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = read_tree(&src_root());
    let mut problems = Vec::new();
    for f in files.iter().filter(|f| !f.test_only) {
        let rel = f.path.strip_prefix(root).unwrap().display().to_string();
        if f.lines > MAX_FILE_LINES {
            problems.push(format!("{rel}: {} lines (at most {MAX_FILE_LINES})", f.lines));
        }
        for (line, n, name) in functions(&f.code) {
            if n > MAX_FN_LINES {
                problems.push(format!("{rel}:{line}: fn {name} is {n} lines (at most {MAX_FN_LINES})"));
            }
        }
    }
    assert!(problems.is_empty(), "{} too long:\n  {}", problems.len(), problems.join("\n  "));
}

// ------------------------------------------------------------------- the checker, checked

fn tree_of(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

fn edges_of(files: &[SourceFile], edges: &[BTreeMap<usize, usize>]) -> BTreeSet<(String, String)> {
    edges.iter().enumerate().flat_map(|(i, t)| t.keys().map(move |&j| (files[i].module.join("::"), files[j].module.join("::")))).collect()
}

#[test]
fn the_checker_sees_use_trees_reexports_inline_paths_and_cycles() {
    let dir = tree_of(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a/mod.rs", "pub mod x;\npub mod y;\npub use x::Thing;\n#[cfg(test)]\nmod tests;\n"),
        ("a/x.rs", "use super::y::{self, Other as O};\npub struct Thing;\n"),
        ("a/y.rs", "pub struct Other;\n// use crate::b;\nfn f() { let s = \"crate::b::z\"; let c = '{'; }\n"),
        ("a/tests.rs", "use crate::b;\n"),
        ("b.rs", "use crate::a::Thing;\nfn g<'a>(x: &'a str) -> usize { crate::a::y::Other; 1 }\n#[cfg(test)]\nmod t { use crate::a; }\n"),
    ]);
    let files = read_tree(dir.path());
    let (_, edges) = import_graph(&files);
    let got = edges_of(&files, &edges);
    let want: BTreeSet<(String, String)> =
        [("a::x", "a::y"), ("b", "a::x"), ("b", "a::y")].iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, want, "comments, strings, chars, tests and re-exports are read as the compiler would");
    assert!(cycles(&edges).is_empty());
    assert!(files.iter().find(|f| f.module == ["a", "tests"]).unwrap().test_only);

    let dir =
        tree_of(&[("lib.rs", "pub mod p;\npub mod q;\n"), ("p.rs", "use crate::q::f;\n"), ("q.rs", "pub fn f() { crate::p::g(); }\n")]);
    let files = read_tree(dir.path());
    let (_, edges) = import_graph(&files);
    assert_eq!(cycles(&edges).len(), 1, "p -> q -> p is a cycle");
}

#[test]
fn the_checker_measures_function_bodies() {
    let code = blank_literals(
        "fn a() -> Result<Vec<u8>, E> where E: Fmt {\n    let x = \"}\";\n    1\n}\ntrait T { fn decl(&self) -> u8; }\nfn b<F: Fn() -> u8>(f: F) {\n}\n",
    );
    let f = functions(&code);
    assert_eq!(f, vec![(1, 4, "a".to_string()), (6, 2, "b".to_string())]);
    assert_eq!(expand_use(&["a", "::", "{", "b", ",", "c", "::", "{", "d", ",", "e", "as", "f", "}", "}"]).len(), 3);
}
