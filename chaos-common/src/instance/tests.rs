use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use super::*;

fn registry(dir: &Path) -> Registry {
    Registry {
        dirs: vec![dir.to_path_buf()],
    }
}

/// A private state directory inside a fresh temporary directory.
fn private_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    (tmp, dir)
}

/// An instance file naming this test process, as a live run would write it.
fn plant(dir: &Path, tool: &str, run_id: &str) -> PathBuf {
    let pid = std::process::id() as i32;
    let body = serde_json::to_vec(&Instance {
        tool: tool.into(),
        run_id: run_id.into(),
        pid,
        start_time: process_start_time(pid).unwrap(),
        pid_namespace: own_pid_namespace(),
    })
    .unwrap();
    let path = dir.join(file_name(tool, run_id));
    fs::write(&path, body).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    path
}

#[test]
fn start_time_survives_odd_command_names() {
    let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 50";
    assert_eq!(parse_stat(stat), Some(("S", 987654)));
    assert_eq!(parse_stat("garbage"), None);
}

#[test]
fn own_process_shares_its_own_network_namespace() {
    assert!(in_own_network_namespace(std::process::id() as i32));
    assert!(!in_own_network_namespace(i32::MAX));
}

#[test]
fn own_process_has_a_start_time() {
    assert!(process_start_time(std::process::id() as i32).is_some());
    assert!(process_start_time(i32::MAX).is_none());
}

#[test]
fn a_registered_run_is_listed_until_its_registration_is_dropped() {
    let (_tmp, dir) = private_dir();
    let reg = registry(&dir);
    let registration = reg.register("cpu-hog", "r1").unwrap();
    let mode = fs::metadata(registration.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let found = reg.list("cpu-hog", Some("r1")).instances;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].pid, std::process::id() as i32);
    assert!(reg.list("memory-leak", None).instances.is_empty());
    drop(registration);
    assert!(reg.list("cpu-hog", None).instances.is_empty());
    assert!(!dir.join("cpu-hog-r1.json").exists());
}

#[test]
fn a_missing_state_directory_is_created_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a").join("state");
    let registration = registry(&dir).register("cpu-hog", "r1").unwrap();
    let mode = fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(registration);
}

#[test]
fn a_run_id_that_is_already_running_is_refused() {
    let (_tmp, dir) = private_dir();
    let reg = registry(&dir);
    let first = reg.register("cpu-hog", "same").unwrap();
    let err = reg.register("cpu-hog", "same").unwrap_err();
    assert!(matches!(err, ChaosError::BadInput(_)), "{err}");
    assert!(err.to_string().contains("cpu-hog --stop same"), "{err}");
    assert!(matches!(
        reg.ensure_not_running("cpu-hog", "same"),
        Err(ChaosError::BadInput(_))
    ));
    // The first run's file is untouched.
    assert_eq!(reg.list("cpu-hog", Some("same")).instances.len(), 1);
    drop(first);
    // Another tool may use the same run id.
    drop(reg.register("memory-leak", "same").unwrap());
}

#[test]
fn a_stale_file_is_replaced_and_never_acted_on() {
    let (_tmp, dir) = private_dir();
    let stale = Instance {
        tool: "cpu-hog".into(),
        run_id: "old".into(),
        pid: i32::MAX,
        start_time: 1,
        pid_namespace: None,
    };
    fs::write(
        dir.join("cpu-hog-old.json"),
        serde_json::to_vec(&stale).unwrap(),
    )
    .unwrap();
    let reg = registry(&dir);
    assert!(reg.list("cpu-hog", None).instances.is_empty());
    assert!(!dir.join("cpu-hog-old.json").exists());
    fs::write(
        dir.join("cpu-hog-old.json"),
        serde_json::to_vec(&stale).unwrap(),
    )
    .unwrap();
    drop(reg.register("cpu-hog", "old").unwrap());
}

#[test]
fn a_directory_others_can_write_is_not_trusted() {
    let (_tmp, dir) = private_dir();
    plant(&dir, "cpu-hog", "x");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let listing = registry(&dir).list("cpu-hog", None);
    assert!(listing.instances.is_empty());
    assert_eq!(listing.read, 0);
    assert!(
        listing.skipped[0].contains("writable by group or others"),
        "{listing:?}"
    );
    let err = registry(&dir).register("cpu-hog", "y").unwrap_err();
    assert!(
        matches!(
            err,
            ChaosError::Refused {
                rule: "stoppable",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("CHAOS_STATE_DIR"), "{err}");
    assert!(!dir.join("cpu-hog-y.json").exists());
}

#[test]
fn a_symlinked_directory_is_not_trusted() {
    let (tmp, dir) = private_dir();
    plant(&dir, "cpu-hog", "x");
    let link = tmp.path().join("link");
    symlink(&dir, &link).unwrap();
    let listing = registry(&link).list("cpu-hog", None);
    assert!(listing.instances.is_empty());
    assert!(listing.skipped[0].contains("symlink"), "{listing:?}");
    assert!(registry(&link).register("cpu-hog", "y").is_err());
}

#[test]
fn a_planted_symlink_is_neither_followed_nor_overwritten() {
    let (tmp, dir) = private_dir();
    let victim = tmp.path().join("victim");
    fs::write(&victim, b"precious").unwrap();
    symlink(&victim, dir.join("cpu-hog-x.json")).unwrap();
    let reg = registry(&dir);
    assert!(reg.list("cpu-hog", None).instances.is_empty());
    let registration = reg.register("cpu-hog", "x").unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    let meta = fs::symlink_metadata(registration.path()).unwrap();
    assert!(meta.file_type().is_file());
    drop(registration);
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
}

#[test]
fn a_file_others_can_write_is_ignored() {
    let (_tmp, dir) = private_dir();
    let path = plant(&dir, "cpu-hog", "x");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    assert!(registry(&dir).list("cpu-hog", None).instances.is_empty());
}

#[test]
fn a_file_whose_name_and_content_disagree_is_ignored() {
    let (_tmp, dir) = private_dir();
    let path = plant(&dir, "cpu-hog", "x");
    fs::rename(&path, dir.join("cpu-hog-other.json")).unwrap();
    assert!(
        registry(&dir)
            .list("cpu-hog", Some("x"))
            .instances
            .is_empty()
    );
    assert!(registry(&dir).list("cpu-hog", None).instances.is_empty());
}

/// Root's view of a directory and a file that another user planted.
#[test]
fn root_files_and_directories_of_other_users_are_not_trusted() {
    assert!(
        Uid::effective().is_root(),
        "needs root (chown to another user); run as root or through scripts/test.sh"
    );
    let nobody = nix::unistd::Uid::from_raw(65534);
    let (_tmp, dir) = private_dir();
    let path = plant(&dir, "cpu-hog", "x");
    nix::unistd::chown(&path, Some(nobody), None).unwrap();
    assert!(registry(&dir).list("cpu-hog", None).instances.is_empty());
    nix::unistd::chown(&path, Some(Uid::from_raw(0)), None).unwrap();
    assert_eq!(registry(&dir).list("cpu-hog", None).instances.len(), 1);
    nix::unistd::chown(&dir, Some(nobody), None).unwrap();
    let listing = registry(&dir).list("cpu-hog", None);
    assert!(listing.instances.is_empty());
    assert!(
        listing.skipped[0].contains("owned by uid 65534"),
        "{listing:?}"
    );
    assert!(registry(&dir).register("cpu-hog", "y").is_err());
}

#[test]
fn a_file_of_another_pid_namespace_is_neither_acted_on_nor_removed() {
    // Its pid (1: that namespace's init) names another process here; issue 8 saw
    // --cleanup delete such a file of a live run in another container.
    let (_tmp, dir) = private_dir();
    let foreign = Instance {
        tool: "memory-leak".into(),
        run_id: "elsewhere".into(),
        pid: 1,
        start_time: 12345,
        pid_namespace: Some("pid:[1]".into()),
    };
    let path = dir.join(file_name("memory-leak", "elsewhere"));
    fs::write(&path, serde_json::to_vec(&foreign).unwrap()).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let reg = registry(&dir);
    assert!(reg.list("memory-leak", None).instances.is_empty());
    assert!(
        path.exists(),
        "the file of another pid namespace was removed"
    );
    // And a file of this namespace is still found.
    plant(&dir, "memory-leak", "here");
    assert_eq!(reg.list("memory-leak", None).instances.len(), 1);
}
