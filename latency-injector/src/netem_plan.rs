//! The plan of a netem run (what `--dry-run` prints and the report records), from the
//! configuration only.

use chaos_common::Plan;
use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use serde_json::json;

use crate::netem::NetemFault;
use crate::tc::{self, LIMIT};

fn delay_text(fault: &NetemFault) -> String {
    let d = &fault.delay;
    let jitter = if d.jitter_ms > 0 {
        format!(
            " ± {} ms (uniform, drawn per packet: jittered packets can overtake each other)",
            d.jitter_ms
        )
    } else {
        String::new()
    };
    let share = if d.probability < 100.0 {
        format!(
            ", {}% of packets (netem's reorder sends the others at once, ahead of the held ones)",
            d.probability
        )
    } else {
        String::new()
    };
    format!(
        "add netem {} under {}:1: delay {} ms{jitter}{share}, at most {LIMIT} packets held",
        tc::handle(fault.root + 1),
        format_args!("{:x}", fault.root),
        d.latency_ms
    )
}

pub fn plan(fault: &NetemFault) -> Plan {
    let root = tc::handle(fault.root);
    let devices = if fault.devices.is_empty() {
        "the egress interface(s) (found before apply)".to_owned()
    } else {
        fault.devices.join(", ")
    };
    let steps = vec![
        format!(
            "start a guard process that deletes root qdisc {root} on {devices} if this process dies or hangs"
        ),
        format!(
            "add root qdisc prio {root} on {devices} (2 bands; the second, a pfifo, takes every packet \
             no filter picks, direct)"
        ),
        delay_text(fault),
        format!(
            "add u32 filters sending {} into {:x}:1 (connections already open included)",
            fault.label, fault.root
        ),
        format!(
            "at the end: delete the filters (new packets go direct), wait up to {} ms for the held \
             packets, delete root qdisc {root} (the default qdisc comes back)",
            fault.hold().min(fault.drain).as_millis()
        ),
    ];
    Plan {
        hypothesis: format!(
            "clients of {} see {} ms more latency (± {} ms) and keep working",
            fault.label, fault.delay.latency_ms, fault.delay.jitter_ms
        ),
        targets: vec![Target::new("upstream", &fault.label).with_details(json!({
            "engine": "netem",
            "protocol": "tcp",
            "interfaces": fault.interfaces(),
        }))],
        steps,
        warnings: Vec::new(),
        // Every matching packet of the network namespace is delayed.
        safety: SafetyRequest {
            destructive: true,
            namespaces: Vec::new(),
        },
    }
}
