//! One finished runbook run: its exit code, output, run directory and result.json.

use std::path::PathBuf;

use serde_json::Value;

/// One finished run.
pub struct Run {
    pub code: Option<i32>,
    pub out: String,
    pub dir: PathBuf,
    pub result: Value,
}

impl Run {
    pub fn check(&self, name: &str) -> &Value {
        self.result["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check '{name}' in {:#}\n{}", self.result, self.out))
    }

    pub fn status(&self, name: &str) -> String {
        self.check(name)["status"].as_str().unwrap().to_owned()
    }

    /// The names of the failed checks.
    pub fn failed(&self) -> Vec<String> {
        self.result["checks"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["status"] == "fail")
            .map(|c| c["name"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn file(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.join(rel))
            .unwrap_or_else(|e| panic!("{}: {e}", self.dir.join(rel).display()))
    }

    /// Asserts the result, showing the run's summary and output when it is not.
    pub fn expect(&self, result: &str) {
        assert_eq!(
            self.result["result"],
            result,
            "{}\n{}",
            std::fs::read_to_string(self.dir.join("summary.md")).unwrap_or_default(),
            self.out
        );
    }
}
