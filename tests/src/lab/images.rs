//! The lab's image table: which local program an image name stands for. The lab has no
//! image store; a container's root filesystem is the host's (read-only when the spec
//! says so), and the image only decides the entrypoint, the default command, extra
//! read-only directories and environment.
//!
//! | image (any registry prefix, any tag) | runs | notes |
//! |---|---|---|
//! | `lomash-wood/<service>` (api-gateway, auth-service, …, analytics-service) | `lab-service` with `LAB_ROLE=<service>` | the stand-in backend |
//! | `postgres` | `lab-service` with `LAB_ROLE=postgres` | an HTTP stand-in for the database, port 5432 |
//! | `redis` | `redis-server` | the real one, from the host; a first argument that is a flag runs `redis-server` with it (as the image's entrypoint script) |
//! | `chaos-tools` (`lomash-wood/chaos-tools:<version>`, docs/debug-image.md) | `net-partition --help` | the static tools of `dist/` on /usr/local/bin (the real image has them there too, with nft and ss, and no shell) |
//! | `busybox`, `alpine`, `debian`, `ubuntu` | `sh` | the host's tools |
//!
//! Anything else fails like a pull from a registry that does not have it
//! (`ErrImagePull`, then `ImagePullBackOff`), with this table in the message.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::launch::BindMount;

/// The Lomash Wood services the stand-in backend can play.
pub const ROLES: [&str; 9] = [
    "api-gateway",
    "auth-service",
    "product-service",
    "order-payment-service",
    "appointment-service",
    "content-service",
    "customer-service",
    "notification-service",
    "analytics-service",
];

/// What an image resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Docker's ENTRYPOINT (replaced by the container's `command`).
    pub entrypoint: Vec<String>,
    /// Docker's CMD (replaced by the container's `args`).
    pub cmd: Vec<String>,
    pub env: Vec<(String, String)>,
    pub mounts: Vec<BindMount>,
    /// What the image's entrypoint script runs when the first argument is a flag
    /// (`redis`: `args: ["--port", …]` runs `redis-server --port …`).
    pub flag_program: Option<String>,
}

/// Where the local programs are.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDirs {
    /// The workspace's build output (lab-service, lab-init).
    pub bin_dir: PathBuf,
    /// The static tool set (`scripts/build-static.sh` writes it).
    pub dist_dir: PathBuf,
}

/// The repository's last path segment without tag or digest:
/// `ghcr.io/lomash-wood/product-service:1.4@sha256:…` -> (`lomash-wood`, `product-service`).
pub fn image_name(image: &str) -> (String, String) {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let name = last.split(':').next().unwrap_or(last).to_owned();
    let owner = no_digest.rsplit('/').nth(1).unwrap_or_default().to_owned();
    (owner, name)
}

pub fn resolve(image: &str, dirs: &ImageDirs) -> Result<Image> {
    let (owner, name) = image_name(image);
    let service = |role: &str| Image {
        entrypoint: vec![dirs.bin_dir.join("lab-service").display().to_string()],
        cmd: vec![],
        env: vec![("LAB_ROLE".to_owned(), role.to_owned())],
        mounts: vec![],
        flag_program: None,
    };
    let shell = |mounts: Vec<BindMount>| Image {
        entrypoint: vec![],
        cmd: vec!["sh".to_owned()],
        env: vec![],
        mounts,
        flag_program: None,
    };
    Ok(match name.as_str() {
        role if owner == "lomash-wood" && ROLES.contains(&role) => service(role),
        "postgres" => service("postgres"),
        "redis" => Image {
            entrypoint: vec![],
            cmd: vec!["redis-server".to_owned()],
            env: vec![],
            mounts: vec![],
            flag_program: Some("redis-server".to_owned()),
        },
        n if n.starts_with("chaos-tools") && !dirs.dist_dir.is_dir() => bail!(
            "image {image:?} maps to the static tools in {}, which are not built: run scripts/build-static.sh",
            dirs.dist_dir.display()
        ),
        n if n.starts_with("chaos-tools") => Image {
            cmd: vec!["net-partition".to_owned(), "--help".to_owned()],
            ..shell(vec![BindMount {
                source: dirs.dist_dir.clone(),
                target: Path::new("/usr/local/bin").to_path_buf(),
                read_only: true,
            }])
        },
        "busybox" | "alpine" | "debian" | "ubuntu" => shell(vec![]),
        _ => bail!(
            "image {image:?} is not in the lab's image table (lomash-wood/<service>, postgres, redis, chaos-tools, busybox, alpine, debian, ubuntu; see docs/lab.md)"
        ),
    })
}

/// The process argv as the kubelet builds it from the image and the container:
/// `command` replaces the entrypoint (and drops CMD), `args` replaces CMD.
pub fn argv(image: &Image, command: &[String], args: Option<&[String]>) -> Vec<String> {
    let (head, default_tail) = if command.is_empty() {
        (image.entrypoint.clone(), image.cmd.clone())
    } else {
        (command.to_vec(), Vec::new())
    };
    let tail = args.map(<[String]>::to_vec).unwrap_or(default_tail);
    let mut argv: Vec<String> = head.into_iter().chain(tail).collect();
    if let (Some(program), Some(first)) = (&image.flag_program, argv.first()) {
        if first.starts_with('-') {
            argv.insert(0, program.clone());
        }
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> ImageDirs {
        ImageDirs {
            bin_dir: "/b".into(),
            dist_dir: "/d".into(),
        }
    }

    #[test]
    fn names_ignore_registry_tag_and_digest() {
        assert_eq!(
            image_name("ghcr.io/lomash-wood/product-service:1.4@sha256:ab"),
            ("lomash-wood".into(), "product-service".into())
        );
        assert_eq!(image_name("redis:7"), (String::new(), "redis".into()));
        assert_eq!(
            image_name("localhost:5000/x/chaos-tools:0.1"),
            ("x".into(), "chaos-tools".into())
        );
    }

    #[test]
    fn services_map_to_the_stand_in_in_their_role() {
        let image = resolve("lomash-wood/order-payment-service:latest", &dirs()).unwrap();
        assert_eq!(image.entrypoint, vec!["/b/lab-service"]);
        assert_eq!(
            image.env,
            vec![("LAB_ROLE".into(), "order-payment-service".into())]
        );
        assert!(resolve("someone/product-service", &dirs()).is_err());
    }

    #[test]
    fn chaos_tools_puts_dist_on_the_path_read_only() {
        let dist = std::env::temp_dir();
        let dirs = ImageDirs {
            bin_dir: "/b".into(),
            dist_dir: dist.clone(),
        };
        let image = resolve("registry.example/lomash-wood/chaos-tools:0.2.0", &dirs).unwrap();
        assert_eq!(image.mounts[0].source, dist);
        assert_eq!(image.mounts[0].target, PathBuf::from("/usr/local/bin"));
        assert!(image.mounts[0].read_only);
        assert_eq!(image.cmd, vec!["net-partition", "--help"]);
        // Without dist/, the error says how to build it.
        let err = resolve("lomash-wood/chaos-tools:0.2.0", &self::dirs())
            .unwrap_err()
            .to_string();
        assert!(err.contains("scripts/build-static.sh"), "{err}");
    }

    #[test]
    fn unknown_images_fail_with_the_table() {
        let err = resolve("nginx:1.27", &dirs()).unwrap_err().to_string();
        assert!(err.contains("image table"), "{err}");
    }

    #[test]
    fn command_replaces_entrypoint_and_cmd_args_replace_cmd() {
        let image = Image {
            entrypoint: vec!["ep".into()],
            cmd: vec!["c1".into()],
            env: vec![],
            mounts: vec![],
            flag_program: None,
        };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(argv(&image, &[], None), s(&["ep", "c1"]));
        assert_eq!(argv(&image, &[], Some(&s(&["a"]))), s(&["ep", "a"]));
        assert_eq!(argv(&image, &s(&["x"]), None), s(&["x"]));
        assert_eq!(argv(&image, &s(&["x"]), Some(&s(&["a"]))), s(&["x", "a"]));
        let redis = resolve("redis:7-alpine", &dirs()).unwrap();
        assert_eq!(
            argv(&redis, &[], Some(&s(&["--port", "1"]))),
            s(&["redis-server", "--port", "1"])
        );
        assert_eq!(argv(&redis, &[], None), s(&["redis-server"]));
    }
}
