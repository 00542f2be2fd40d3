//! What the runbooks whose faults run in remote mode (EXP-004, EXP-007) check beyond a
//! run: a dry run that touches nothing in the lab.

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
