//! Filter helpers: Go `path.Match` globs for `reference=` and label matching for `label=`.

use std::collections::BTreeMap;

use crate::reference::Reference;

/// Go's `path.Match`: `*` matches any run of non-`/` characters, `?` one non-`/` character,
/// `[...]` a class (with `^` negation and ranges), `\` escapes. A malformed pattern matches
/// nothing.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    matches(&p, &n)
}

fn matches(p: &[char], n: &[char]) -> bool {
    // Iterative with one backtrack point for `*`, which cannot cross `/`.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(&p[pi..], n[ni]) {
                        if ok {
                            pi += next;
                            ni += 1;
                            continue;
                        }
                    } else {
                        return false;
                    }
                }
                '\\' if pi + 1 < p.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                '\\' if pi + 1 < p.len() => {}
                c if c != '?' && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, sn)) if n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class at the start of `p` ("[...]"); returns (matched, class length),
/// or None when the class is malformed.
fn class(p: &[char], c: char) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = p.get(i) == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let hi = if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&x| x != ']') {
            i += 1;
            let mut h = *p.get(i)?;
            if h == '\\' {
                i += 1;
                h = *p.get(i)?;
            }
            i += 1;
            h
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    Some((matched != negate && c != '/', i))
}

/// Docker's `FamiliarMatch`: the pattern against "name:tag", then against "name" alone.
pub(crate) fn reference_matches(pattern: &str, reference: &Reference) -> bool {
    glob_match(pattern, &reference.familiar_string())
        || glob_match(pattern, &reference.familiar_name())
}

/// `label=key` / `label=key=value` filters (all must hold); a leading `!` negates one.
pub(crate) fn labels_match(filters: &[String], labels: &BTreeMap<String, String>) -> bool {
    filters.iter().all(|f| {
        let (negate, f) = match f.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, f.as_str()),
        };
        let hit = match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
            None => labels.contains_key(f),
        };
        hit != negate
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_like_go_path_match() {
        let cases: &[(&str, &str, bool)] = &[
            ("busybox", "busybox", true),
            ("bus*", "busybox", true),
            ("bus*:lat*", "busybox:latest", true),
            ("*", "me/bb", false),
            ("*/*", "me/bb", true),
            ("b?sybox", "busybox", true),
            ("b[a-z]sybox", "busybox", true),
            ("b[^u]sybox", "busybox", false),
            ("b\\*", "b*", true),
            ("b\\*", "bx", false),
            ("busybox", "busybox:latest", false),
            ("*:1", "me/bb:1", false),
            ("[", "x", false),
            ("", "", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
        ];
        for (p, n, want) in cases {
            assert_eq!(glob_match(p, n), *want, "{p} vs {n}");
        }
    }

    #[test]
    fn familiar_match_tries_name_and_name_tag() {
        let r = Reference::parse_normalized("me/bb:1").unwrap();
        assert!(reference_matches("me/bb", &r));
        assert!(reference_matches("me/*:1", &r));
        assert!(!reference_matches("bb", &r));
    }

    #[test]
    fn labels() {
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "1".to_string());
        let cases: &[(&[&str], bool)] = &[
            (&["a"], true),
            (&["a=1"], true),
            (&["a=2"], false),
            (&["b"], false),
            (&["a", "!b"], true),
            (&["!a"], false),
            (&[], true),
        ];
        for (f, want) in cases {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            assert_eq!(labels_match(&f, &l), *want, "{f:?}");
        }
    }
}
