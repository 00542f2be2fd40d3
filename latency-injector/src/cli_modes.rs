//! Mode selection: which of explicit, egress (to targets, or every outgoing connection)
//! and ingress the flags ask for, with its addresses resolved (a name that does not
//! resolve is bad input).

use chaos_common::{ChaosError, Result};

use super::{Cli, DEFAULT_APP_PORT};
use crate::target::{Chosen, resolve, resolve_v4, split_target};

impl Cli {
    fn explicit(&self) -> Result<Chosen> {
        match (&self.listen, &self.upstream) {
            (Some(listen), Some(upstream)) => Ok(Chosen::Explicit {
                listen: *listen,
                upstream: upstream.clone(),
                addrs: resolve("--upstream", upstream)?,
            }),
            (Some(_), None) => Err(ChaosError::bad_input("--listen needs --upstream HOST:PORT")),
            (None, _) => Err(ChaosError::bad_input("--upstream needs --listen ADDR")),
        }
    }

    fn egress(&self) -> Result<Chosen> {
        let (hosts, port) = match &self.target {
            Some(_) if !self.target_hosts.is_empty() => {
                return Err(ChaosError::bad_input(
                    "give the target once: --target HOST[:PORT] or -H/--target-host HOST",
                ));
            }
            Some(target) => {
                let (host, port) = split_target(target)?;
                if port.is_some() && self.target_port.is_some() {
                    return Err(ChaosError::bad_input(
                        "--target already has a port: drop -p/--target-port",
                    ));
                }
                (vec![host], port.or(self.target_port))
            }
            None => (self.target_hosts.clone(), self.target_port),
        };
        let mut targets = Vec::new();
        for host in &hosts {
            for ip in resolve_v4(host)? {
                if !targets.contains(&ip) {
                    targets.push(ip);
                }
            }
        }
        let label = match port {
            Some(p) => format!("{}:{p}", hosts.join(",")),
            None => hosts.join(","),
        };
        Ok(Chosen::Egress {
            label,
            targets,
            port,
        })
    }

    /// Picks the mode from the flags given; mixing modes is bad input.
    pub(super) fn choose(&self, http: bool) -> Result<Chosen> {
        let explicit = self.listen.is_some() || self.upstream.is_some();
        let egress =
            self.target.is_some() || !self.target_hosts.is_empty() || self.target_port.is_some();
        let ingress = self.app_port.is_some();
        if [explicit, egress, ingress].iter().filter(|m| **m).count() > 1 {
            return Err(ChaosError::bad_input(
                "choose one mode: --listen/--upstream (explicit), --target or -H/-p (egress), or --app-port (ingress)",
            ));
        }
        if self.reset_existing && explicit {
            return Err(ChaosError::bad_input(
                "--reset-existing needs a transparent mode (--target or --app-port)",
            ));
        }
        if self.allow_source_rewrite && (explicit || egress) {
            return Err(ChaosError::bad_input(
                "--allow-source-rewrite is for transparent ingress (--app-port or --endpoint alone)",
            ));
        }
        if explicit {
            self.explicit()
        } else if egress && (self.target.is_some() || !self.target_hosts.is_empty()) {
            self.egress()
        } else if egress && http {
            Err(ChaosError::bad_input(
                "-p/--target-port alone delays every outgoing connection to that port (TCP): \
                 HTTP matching (--endpoint, --method, --http) is for ingress or a --target",
            ))
        } else if ingress || http {
            Ok(Chosen::Ingress {
                app_port: self.app_port.unwrap_or(DEFAULT_APP_PORT),
            })
        } else {
            // The originals' form (`-l 200 -j 50 [-p PORT]`): every outgoing TCP
            // connection of this network namespace (netem only).
            Ok(Chosen::Everything {
                port: self.target_port,
            })
        }
    }

    /// Remote mode: the whole local validation (modes, `--engine`), before anything is
    /// touched, of the forms that name no host to resolve (`--endpoint`/`--app-port`
    /// ingress, no target at all); the others resolve their names in the pod.
    pub(super) fn check_unresolved(&self) -> Result<()> {
        let names = self.target.is_some()
            || !self.target_hosts.is_empty()
            || self.listen.is_some()
            || self.upstream.is_some();
        if !names {
            crate::engine_config::shape(&self.settings()?)?;
        }
        Ok(())
    }
}
