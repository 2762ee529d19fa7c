//! Data-driven tests of mount parsing against dockerd's answers.

use super::*;

#[test]
fn short_form() {
    let b = parse_bind("/tmp:/src:ro").unwrap();
    assert_eq!(
        (b.kind, b.rw, b.mode.as_str(), b.propagation.as_str()),
        (MountKind::Bind, false, "ro", "rprivate")
    );
    let b = parse_bind("/tmp:/e:rshared").unwrap();
    assert_eq!((b.rw, b.propagation.as_str()), (true, "rshared"));
    let v = parse_bind("data:/c:nocopy,ro").unwrap();
    assert_eq!(
        (v.kind, v.name.as_str(), v.mode.as_str(), v.rw, v.copy_data),
        (MountKind::Volume, "data", "nocopy,ro", false, false)
    );
    let v = parse_bind("data:/data").unwrap();
    assert_eq!(
        (v.mode.as_str(), v.rw, v.copy_data, v.anonymous),
        ("z", true, true, false)
    );
    let v = parse_bind("data:/data/../x/").unwrap();
    assert_eq!(v.destination, "/x");
    assert!(parse_bind("/data").unwrap().anonymous);
}

#[test]
fn short_form_errors_are_dockers() {
    let cases = [
        ("/tmp:relative", "invalid volume specification: '/tmp:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute"),
        ("a:/d:bogus", "invalid mode: bogus"),
        ("a:/d:ro,rw", "invalid mode: ro,rw"),
        ("a/b:/d", "create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"),
        ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
        ("/d:ro", "invalid volume specification: '/d:ro'"),
    ];
    for (spec, want) in cases {
        assert_eq!(parse_bind(spec).unwrap_err().to_string(), want, "{spec}");
    }
}

#[test]
fn long_form() {
    let v = parse_mount(&serde_json::json!({"Type":"volume","Source":"nv","Target":"/f","ReadOnly":true,"VolumeOptions":{"NoCopy":true}})).unwrap();
    assert_eq!(
        (v.name.as_str(), v.mode.as_str(), v.rw, v.copy_data),
        ("nv", "z", false, false)
    );
    let t = parse_mount(&serde_json::json!({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":67108864,"Mode":1023}})).unwrap();
    assert_eq!(t.tmpfs_options, "size=67108864,mode=1777");
    let b = parse_mount(&serde_json::json!({"Type":"bind","Source":"/tmp","Target":"/g","BindOptions":{"Propagation":"rslave"}})).unwrap();
    assert_eq!(
        (b.mode.as_str(), b.propagation.as_str(), b.create_source),
        ("", "rslave", false)
    );
    let a = parse_mount(&serde_json::json!({"Type":"volume","Target":"/anon"})).unwrap();
    assert!(a.anonymous);
}

#[test]
fn long_form_errors_are_dockers() {
    let cases = [
        (serde_json::json!({"Type":"bind","Source":"/nonexistent-estiba","Target":"/d"}), "invalid mount config for type \"bind\": bind source path does not exist: /nonexistent-estiba"),
        (serde_json::json!({"Type":"volume","Source":"x","Target":"d"}), "invalid mount config for type \"volume\": invalid mount path: 'd' mount path must be absolute"),
        (serde_json::json!({"Type":"bind","Target":"/d"}), "invalid mount config for type \"bind\": field Source must not be empty"),
        (serde_json::json!({"Type":"tmpfs","Source":"x","Target":"/d"}), "invalid mount config for type \"tmpfs\": field Source must not be specified"),
        (serde_json::json!({"Type":"foo","Target":"/d"}), "invalid mount config for type \"foo\": mount type unknown"),
        (serde_json::json!({"Type":"volume","Target":"/d","BindOptions":{}}), "invalid mount config for type \"volume\": field BindOptions must not be specified"),
        (serde_json::json!({"Type":"volume","Source":"v1","Target":"/d","VolumeOptions":{"Subpath":"x"}}), "invalid mount config for type \"volume\": volume subpaths are not supported by estiba"),
    ];
    for (v, want) in cases {
        assert_eq!(parse_mount(&v).unwrap_err().to_string(), want, "{v}");
    }
}

#[test]
fn volumes_from_modes() {
    assert_eq!(parse_volumes_from("db").unwrap(), ("db", None));
    assert_eq!(parse_volumes_from("db:ro").unwrap(), ("db", Some(false)));
    assert!(parse_volumes_from("db:xx").is_err());
}

#[test]
fn clean_paths() {
    assert_eq!(clean("/a/./b/../c/"), "/a/c");
    assert_eq!(clean("/../x"), "/x");
}
