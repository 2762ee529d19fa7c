//! `.dockerignore`, applied client-side as docker does (the daemon gets the filtered context):
//! Docker's rules. Patterns are cleaned paths relative to the context root
//! (a leading `/` is dropped); `*`, `?` and `[...]` match within one path element, `**` any
//! number of elements; a pattern that matches a directory excludes everything below it; a
//! `!` pattern re-includes; the last matching pattern wins.

/// Most patterns read from one `.dockerignore`.
pub(crate) const MAX_PATTERNS: usize = 10_000;

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    rules: Vec<(bool, Vec<String>)>,
}

impl Matcher {
    /// Parses the file's text (comments and blank lines ignored).
    pub(crate) fn parse(text: &str) -> Matcher {
        let mut rules = Vec::new();
        for line in text.lines().take(MAX_PATTERNS) {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let segs = clean(pat);
            if segs.is_empty() {
                continue;
            }
            rules.push((negate, segs));
        }
        Matcher { rules }
    }

    /// Whether `path` (relative, `/`-separated) is excluded.
    pub(crate) fn excluded(&self, path: &str) -> bool {
        let segs = clean(path);
        let mut excluded = false;
        for (negate, pat) in &self.rules {
            // A pattern matching the path or one of its parent directories.
            let hit = (1..=segs.len()).any(|n| match_segs(pat, &segs[..n]));
            if hit {
                excluded = !negate;
            }
        }
        excluded
    }

    /// Whether some `!` rule could re-include something below `dir` (so a walker must not
    /// skip the excluded directory wholesale).
    pub(crate) fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(n, _)| *n)
    }
}

fn clean(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

fn match_segs(pat: &[String], path: &[String]) -> bool {
    match pat.split_first() {
        None => path.is_empty(),
        Some((p, rest)) if p == "**" => {
            (0..=path.len()).any(|skip| match_segs(rest, &path[skip..]))
        }
        Some((p, rest)) => match path.split_first() {
            Some((s, prest)) => glob(p.as_bytes(), s.as_bytes()) && match_segs(rest, prest),
            None => false,
        },
    }
}

use estiba_api::glob::glob;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_rules() {
        let m = Matcher::parse("# comment\n*.log\n!keep.log\n/build\n**/tmp\nsecret?\n[ab].txt\n");
        for (path, want) in [
            ("x.log", true),
            ("keep.log", false),
            ("dir/x.log", false),
            ("build", true),
            ("build/a/b", true),
            ("a/b/tmp/f", true),
            ("tmp", true),
            ("secret1", true),
            ("secret12", false),
            ("a.txt", true),
            ("c.txt", false),
            ("src/main.rs", false),
        ] {
            assert_eq!(m.excluded(path), want, "{path}");
        }
    }

    #[test]
    fn exception_inside_excluded_dir() {
        let m = Matcher::parse("docs\n!docs/README.md\n");
        assert!(m.excluded("docs/a.md"));
        assert!(!m.excluded("docs/README.md"));
        assert!(m.has_exceptions());
    }
}
