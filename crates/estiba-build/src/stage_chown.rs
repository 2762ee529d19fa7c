//! `COPY --chown`/`ADD --chown`: `user[:group]` as numbers, names looked up in the image's
//! `/etc/passwd` and `/etc/group`, with Docker's wording when one is missing.

use crate::BuildError;

/// `--chown=user[:group]` in numbers, names looked up with `lookup(file, name)` in the
/// image's `/etc/passwd` and `/etc/group` (a lone user is also the group, as Docker does).
pub(crate) fn parse_chown(
    s: &str,
    lookup: &mut dyn FnMut(&str, &str) -> Option<u64>,
) -> Result<(u64, u64), BuildError> {
    let parts: Vec<&str> = s.split(':').collect();
    let (u, g) = match parts.as_slice() {
        [u] => (*u, *u),
        [u, g] => (*u, *g),
        _ => {
            return Err(BuildError::Step(format!(
                "invalid chown string format: {s}"
            )))
        }
    };
    let fail = |what: &str, kind: &str, name: &str| {
        BuildError::Step(format!(
            "unable to convert uid/gid chown string to host mapping: can't find {what} for {kind} {name}: no such {kind}: {name}"
        ))
    };
    let uid = match u.parse::<u64>() {
        Ok(n) => n,
        Err(_) => lookup("/etc/passwd", u).ok_or_else(|| fail("uid", "user", u))?,
    };
    let gid = match g.parse::<u64>() {
        Ok(n) => n,
        Err(_) => lookup("/etc/group", g).ok_or_else(|| fail("gid", "group", g))?,
    };
    Ok((uid, gid))
}

/// The ID (third field) of `name` in a passwd or group file.
pub(crate) fn id_in(file: &str, name: &str) -> Option<u64> {
    file.lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[0] == name)
        .and_then(|f| f[2].parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        let passwd = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
        let group = "root:x:0:\nstaff:x:50:\napp:x:1001:\n";
        let mut lookup =
            |f: &str, n: &str| id_in(if f == "/etc/passwd" { passwd } else { group }, n);
        assert_eq!(parse_chown("1:2", &mut lookup).unwrap(), (1, 2));
        assert_eq!(parse_chown("7", &mut lookup).unwrap(), (7, 7));
        assert_eq!(parse_chown("app", &mut lookup).unwrap(), (1000, 1001));
        assert_eq!(parse_chown("app:staff", &mut lookup).unwrap(), (1000, 50));
        assert_eq!(parse_chown("5:staff", &mut lookup).unwrap(), (5, 50));
        let e = parse_chown("nobody:1", &mut lookup)
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("can't find uid for user nobody: no such user: nobody"),
            "{e}"
        );
        assert!(parse_chown("a:b:c", &mut lookup).is_err());
    }
}
