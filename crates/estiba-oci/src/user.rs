//! `USER` resolution against the image's own `/etc/passwd` and `/etc/group`, as Docker does it.
//!
//! The files are opened with `RESOLVE_IN_ROOT`, so a symlink in the image (say `/etc/passwd ->
//! /../../etc/passwd`) resolves inside the rootfs and never reaches the host's files.

use std::io::Read;
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use thiserror::Error;

/// Largest passwd or group file we read; real ones are a few kilobytes.
pub const MAX_ID_FILE_BYTES: u64 = 4 * 1024 * 1024;

const MAX_ID: i64 = (1 << 31) - 1;

/// The identity a container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Docker's order: the primary gid, the user's supplementary groups, then `--group-add`.
    pub additional_gids: Vec<u32>,
    /// The home directory from passwd; empty when the user has no entry.
    pub home: String,
}

/// Why a user spec could not be resolved (Docker's wording, which users know).
#[derive(Debug, Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    /// `--group-add` of an unknown name; Docker capitalises this one.
    #[error("Unable to find group {0}: no matching entries in group file")]
    NoSuchAdditionalGroup(String),
    #[error("uids and gids must be in range 0-2147483647")]
    OutOfRange,
    #[error("{file} in the container is larger than {MAX_ID_FILE_BYTES} bytes")]
    FileTooLarge { file: &'static str },
    #[error("open container root {path}")]
    OpenRoot {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("read {file} in the container")]
    Read {
        file: &'static str,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct PasswdEntry {
    name: String,
    uid: i64,
    gid: i64,
    home: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct GroupEntry {
    name: String,
    gid: i64,
    members: Vec<String>,
}

/// Go's `strconv.Atoi` as runc's parser uses it: garbage is 0, not an error.
fn lenient_int(field: &str) -> i64 {
    field.parse().unwrap_or(0)
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            PasswdEntry {
                name: field(0).to_owned(),
                uid: lenient_int(field(2)),
                gid: lenient_int(field(3)),
                home: field(5).to_owned(),
            }
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            let members = field(3);
            GroupEntry {
                name: field(0).to_owned(),
                gid: lenient_int(field(2)),
                members: if members.is_empty() {
                    Vec::new()
                } else {
                    members.split(',').map(str::to_owned).collect()
                },
            }
        })
        .collect()
}

fn in_range(id: i64) -> Result<u32, UserError> {
    if (0..=MAX_ID).contains(&id) {
        u32::try_from(id).map_err(|_| UserError::OutOfRange)
    } else {
        Err(UserError::OutOfRange)
    }
}

/// Reads `path` (absolute inside the container) without leaving `root`; `None` when it is
/// missing or unreadable, which Docker treats as an empty database.
fn read_in_root(
    root: &std::fs::File,
    path: &str,
    file: &'static str,
) -> Result<Option<String>, UserError> {
    let fd = match rustix::fs::openat2(
        root,
        path,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::ACCESS | Errno::XDEV) => {
            return Ok(None)
        }
        Err(e) => {
            return Err(UserError::Read {
                file,
                source: e.into(),
            })
        }
    };
    let f = std::fs::File::from(fd);
    let meta = f
        .metadata()
        .map_err(|source| UserError::Read { file, source })?;
    if !meta.is_file() {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    f.take(MAX_ID_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| UserError::Read { file, source })?;
    if bytes.len() as u64 > MAX_ID_FILE_BYTES {
        return Err(UserError::FileTooLarge { file });
    }
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Resolves `user` (`""`, `name`, `uid`, `name:group`, `uid:gid`, ...) and `--group-add` against
/// the passwd and group files inside `rootfs`, with Docker's (runc's) rules.
pub fn resolve_user(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<ResolvedUser, UserError> {
    let root = std::fs::File::open(rootfs).map_err(|source| UserError::OpenRoot {
        path: rootfs.display().to_string(),
        source,
    })?;
    let passwd = read_in_root(&root, "/etc/passwd", "/etc/passwd")?;
    let group = read_in_root(&root, "/etc/group", "/etc/group")?;
    resolve_user_from(user, group_add, passwd.as_deref(), group.as_deref())
}

/// [`resolve_user`] on file contents already read; `None` stands for a missing file.
pub fn resolve_user_from(
    user: &str,
    group_add: &[String],
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser, UserError> {
    let mut parts = user.split(':');
    let user_arg = parts.next().unwrap_or("");
    let group_arg = parts.next().unwrap_or("");
    let uid_arg: Option<i64> = user_arg.parse().ok();
    let gid_arg: Option<i64> = group_arg.parse().ok();

    let users = passwd.map(parse_passwd).unwrap_or_default();
    let groups = group.map(parse_group).unwrap_or_default();

    let (mut uid, mut gid, mut home) = (0i64, 0i64, String::new());
    let matched = users.iter().find(|u| match (user_arg, uid_arg) {
        ("", _) => u.uid == 0,
        (_, Some(n)) => u.uid == n,
        (name, None) => u.name == name,
    });
    let mut matched_name = "";
    if let Some(u) = matched {
        matched_name = &u.name;
        uid = u.uid;
        gid = u.gid;
        home = u.home.clone();
    } else if !user_arg.is_empty() {
        let Some(n) = uid_arg else {
            return Err(UserError::NoSuchUser(user_arg.to_owned()));
        };
        uid = n;
        in_range(uid)?;
    }

    let mut supplementary = Vec::new();
    if !group_arg.is_empty() {
        match groups.iter().find(|g| match gid_arg {
            Some(n) => g.gid == n,
            None => g.name == group_arg,
        }) {
            Some(g) => gid = g.gid,
            None => {
                let Some(n) = gid_arg else {
                    return Err(UserError::NoSuchGroup(group_arg.to_owned()));
                };
                gid = n;
                in_range(gid)?;
            }
        }
    } else if !matched_name.is_empty() {
        supplementary = groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == matched_name))
            .map(|g| g.gid)
            .collect();
    }

    let mut additional = vec![in_range(gid)?];
    for g in supplementary {
        additional.push(in_range(g)?);
    }
    let mut added: Vec<u32> = Vec::new();
    for wanted in group_add {
        let found = groups
            .iter()
            .find(|g| g.name == *wanted || g.gid.to_string() == *wanted)
            .map(|g| g.gid);
        let id = match found {
            Some(id) => id,
            None => wanted
                .parse::<i64>()
                .map_err(|_| UserError::NoSuchAdditionalGroup(wanted.clone()))?,
        };
        let id = in_range(id)?;
        if !added.contains(&id) {
            added.push(id);
        }
    }
    additional.extend(added);

    Ok(ResolvedUser {
        uid: in_range(uid)?,
        gid: in_range(gid)?,
        additional_gids: additional,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
        www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n\
        nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        # a comment\n\
        daemon:x:1:\n\
        wheel:x:10:root,app\n\
        www-data:x:33:\n\
        users:x:100:app\n\
        nogroup:x:65534:\n\
        app:x:1000:\n";

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn resolution_table() {
        // (user, group_add, uid, gid, additional gids, home)
        type Case<'a> = (&'a str, &'a [&'a str], u32, u32, Vec<u32>, &'a str);
        let cases: Vec<Case> = vec![
            ("", &[], 0, 0, vec![0, 10], "/root"),
            ("root", &[], 0, 0, vec![0, 10], "/root"),
            ("0", &[], 0, 0, vec![0, 10], "/root"),
            ("nobody", &[], 65534, 65534, vec![65534], "/nonexistent"),
            ("app", &[], 1000, 1000, vec![1000, 10, 100], "/home/app"),
            ("1000", &[], 1000, 1000, vec![1000, 10, 100], "/home/app"),
            ("app:www-data", &[], 1000, 33, vec![33], "/home/app"),
            ("app:33", &[], 1000, 33, vec![33], "/home/app"),
            ("app:4242", &[], 1000, 4242, vec![4242], "/home/app"),
            ("4242", &[], 4242, 0, vec![0], ""),
            ("4242:4343", &[], 4242, 4343, vec![4343], ""),
            (
                "nobody",
                &["users", "1000", "777", "users"],
                65534,
                65534,
                vec![65534, 100, 1000, 777],
                "/nonexistent",
            ),
            ("www-data", &["wheel"], 33, 33, vec![33, 10], "/var/www"),
        ];
        for (user, add, uid, gid, gids, home) in cases {
            let got = resolve_user_from(user, &s(add), Some(PASSWD), Some(GROUP))
                .unwrap_or_else(|e| panic!("{user}: {e}"));
            assert_eq!(
                got,
                ResolvedUser {
                    uid,
                    gid,
                    additional_gids: gids,
                    home: home.to_owned()
                },
                "user {user:?} group_add {add:?}"
            );
        }
    }

    #[test]
    fn error_table() {
        // (user, group_add, passwd, group, error)
        type Case<'a> = (
            &'a str,
            &'a [&'a str],
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            (
                "ghost",
                &[],
                Some(PASSWD),
                Some(GROUP),
                "unable to find user ghost: no matching entries in passwd file",
            ),
            (
                "nobody",
                &[],
                None,
                None,
                "unable to find user nobody: no matching entries in passwd file",
            ),
            (
                "app:ghosts",
                &[],
                Some(PASSWD),
                Some(GROUP),
                "unable to find group ghosts: no matching entries in group file",
            ),
            (
                "app",
                &["ghosts"],
                Some(PASSWD),
                Some(GROUP),
                "Unable to find group ghosts: no matching entries in group file",
            ),
            (
                "-1",
                &[],
                Some(PASSWD),
                Some(GROUP),
                "uids and gids must be in range 0-2147483647",
            ),
            (
                "5:2147483648",
                &[],
                Some(PASSWD),
                Some(GROUP),
                "uids and gids must be in range 0-2147483647",
            ),
        ];
        for (user, add, passwd, group, want) in cases {
            let err = resolve_user_from(user, &s(add), passwd, group).unwrap_err();
            assert_eq!(err.to_string(), want, "user {user:?}");
        }
    }

    #[test]
    fn missing_files_allow_numeric_ids() {
        let got = resolve_user_from("123:456", &s(&["789"]), None, None).unwrap();
        assert_eq!(
            (got.uid, got.gid, got.additional_gids),
            (123, 456, vec![456, 789])
        );
        let root = resolve_user_from("", &[], None, None).unwrap();
        assert_eq!((root.uid, root.gid, root.additional_gids), (0, 0, vec![0]));
    }

    fn rootfs_with_etc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        dir
    }

    #[test]
    fn reads_files_from_the_rootfs() {
        let dir = rootfs_with_etc();
        std::fs::write(dir.path().join("etc/passwd"), PASSWD).unwrap();
        std::fs::write(dir.path().join("etc/group"), GROUP).unwrap();
        let got = resolve_user(dir.path(), "app", &[]).unwrap();
        assert_eq!(
            (got.uid, got.gid, got.additional_gids),
            (1000, 1000, vec![1000, 10, 100])
        );
    }

    #[test]
    fn symlinks_stay_inside_the_rootfs() {
        // The host file the links aim at: a user only it knows.
        let host = tempfile::tempdir().unwrap();
        let host_passwd = host.path().join("passwd");
        std::fs::write(&host_passwd, "hostonly:x:4321:4321::/:/bin/sh\n").unwrap();

        // An absolute link: resolved against the rootfs, it points nowhere.
        let dir = rootfs_with_etc();
        std::os::unix::fs::symlink(&host_passwd, dir.path().join("etc/passwd")).unwrap();
        let err = resolve_user(dir.path(), "hostonly", &[]).unwrap_err();
        assert!(matches!(err, UserError::NoSuchUser(_)), "{err}");

        // A relative link climbing out with `..`: clamped at the rootfs root.
        let dir = rootfs_with_etc();
        let climb = format!("../../../../../../../..{}", host_passwd.display());
        std::os::unix::fs::symlink(&climb, dir.path().join("etc/passwd")).unwrap();
        let err = resolve_user(dir.path(), "hostonly", &[]).unwrap_err();
        assert!(matches!(err, UserError::NoSuchUser(_)), "{err}");

        // The same absolute link, when the target exists inside the rootfs, reads that copy.
        let inner = dir.path().join(host_passwd.strip_prefix("/").unwrap());
        std::fs::create_dir_all(inner.parent().unwrap()).unwrap();
        std::fs::write(&inner, "inside:x:77:77::/:/bin/sh\n").unwrap();
        let got = resolve_user(dir.path(), "inside", &[]).unwrap();
        assert_eq!(got.uid, 77);
        assert!(resolve_user(dir.path(), "hostonly", &[]).is_err());
    }

    #[test]
    fn oversized_passwd_is_refused() {
        let dir = rootfs_with_etc();
        let line = "x:x:1:1::/:/bin/sh\n";
        let big = line.repeat((MAX_ID_FILE_BYTES as usize / line.len()) + 2);
        std::fs::write(dir.path().join("etc/passwd"), big).unwrap();
        let err = resolve_user(dir.path(), "x", &[]).unwrap_err();
        assert!(matches!(err, UserError::FileTooLarge { .. }), "{err}");
    }
}
