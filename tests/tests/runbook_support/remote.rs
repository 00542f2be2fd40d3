//! What the runbooks whose faults run in remote mode (EXP-004, EXP-007, the guard's test)
//! check beyond a run: a dry run that touches nothing in the lab, a partition gone.

use super::{Lab, Runs};

impl Runs<'_> {
    /// `SCRIPT --dry-run` on the lab: exit 0, the tool's remote plan naming the pods, and
    /// nothing touched: no run directory, no ephemeral container added to any pod of `app`.
    pub fn dry_run_touches_nothing(
        &self,
        lab: &Lab,
        script: &str,
        run_id: &str,
        tool: &str,
        app: &str,
    ) {
        let out = self
            .command(script, run_id, &["--dry-run"])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("(dry run: nothing is touched)"), "{text}");
        assert!(
            text.contains(&format!("{app}-")),
            "no pod of {app} in the plan: {text}"
        );
        assert!(text.contains(tool), "{text}");
        assert!(
            self.run_dir(run_id).is_none(),
            "a dry run created its run directory"
        );
        let added = lab.ok(&[
            "get",
            "pods",
            "-l",
            &format!("app={app}"),
            "-o",
            "jsonpath={.items[*].spec.ephemeralContainers[*].name}",
        ]);
        assert!(added.trim().is_empty(), "a dry run added {added}");
    }
}

impl Lab {
    /// net-partition's fault is gone from every pod of `app`: each reaches `upstream`
    /// (port 3000) again, and no ephemeral container is still running (finished ones
    /// stay in the pod spec: they cannot be removed, docs/remote.md).
    pub fn partition_gone(&self, app: &str, upstream: &str) {
        let url = format!("http://{upstream}:3000/health");
        for pod in self
            .ok(&["get", "pods", "-l", &format!("app={app}"), "-o", "name"])
            .lines()
        {
            let out = self.kubectl(&[
                "exec",
                pod,
                "--",
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-m",
                "3",
                &url,
            ]);
            assert!(out.status.success(), "{pod} cannot reach {upstream}");
            let running = self.ok(&[
                "get",
                pod,
                "-o",
                "jsonpath={.status.ephemeralContainerStatuses[?(@.state.running)].name}",
            ]);
            assert!(running.trim().is_empty(), "{pod} still runs {running}");
        }
    }
}
