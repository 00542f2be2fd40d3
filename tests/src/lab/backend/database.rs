//! The `postgres` role: the lab's database stand-in. Not PostgreSQL: an HTTP JSON
//! service (`POST /query {"op": …}` -> `{"rows": …}`) holding the tables the services
//! share, so that every replica sees the same orders, and answering each query after
//! `LAB_DB_LATENCY_MS` (default 20 ms).
//!
//! | op | arguments | rows |
//! |---|---|---|
//! | `products.list` | | the catalogue |
//! | `orders.insert` | paymentIntentId, amount, currency, userId, status | the order |
//! | `orders.list` | status (optional) | orders |
//! | `orders.summary` | | `{total, byStatus, duplicateIntents}` |
//! | `webhook.process` | eventId, type, paymentIntentId, dedupe | `{duplicate, matched, orderId}` |
//! | `appointments.insert` | customer, slot | the appointment |
//! | `appointments.list` | | appointments |

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use serde_json::{Value, json};

/// The catalogue every product-service replica serves.
fn catalogue() -> Value {
    let names = [
        ("Oak dining table", "tables", 129_900),
        ("Walnut sideboard", "storage", 189_900),
        ("Ash coffee table", "tables", 49_900),
        ("Elm bench", "seating", 34_900),
        ("Beech bookcase", "storage", 59_900),
        ("Cherry bed frame", "bedroom", 149_900),
        ("Maple desk", "office", 79_900),
        ("Pine wardrobe", "bedroom", 99_900),
        ("Oak kitchen island", "kitchen", 249_900),
        ("Walnut armchair", "seating", 69_900),
        ("Ash shelving unit", "storage", 29_900),
        ("Birch side table", "tables", 19_900),
    ];
    Value::Array(
        names
            .iter()
            .enumerate()
            .map(|(i, (name, category, pence))| {
                json!({"id": format!("prod_{:03}", i + 1), "name": name, "category": category,
                       "pricePence": pence, "currency": "GBP"})
            })
            .collect(),
    )
}

#[derive(Default)]
struct Tables {
    orders: Vec<Value>,
    events: BTreeSet<String>,
    appointments: Vec<Value>,
}

#[derive(Default)]
pub struct Database {
    tables: Mutex<Tables>,
}

impl Database {
    /// Runs one operation; `Err` is a message for a 400 answer.
    pub fn run(&self, op: &Value) -> Result<Value, String> {
        let name = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let str_arg = |k: &str| {
            op.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let mut t = match self.tables.lock() {
            Ok(t) => t,
            Err(p) => p.into_inner(),
        };
        Ok(match name {
            "products.list" => catalogue(),
            "orders.insert" => {
                let order = json!({
                    "id": format!("ord_{:06}", t.orders.len() + 1),
                    "paymentIntentId": str_arg("paymentIntentId"),
                    "amount": op.get("amount").cloned().unwrap_or(json!(0)),
                    "currency": str_arg("currency"),
                    "userId": str_arg("userId"),
                    "status": str_arg("status"),
                });
                t.orders.push(order.clone());
                order
            }
            "orders.list" => {
                let status = op.get("status").and_then(Value::as_str);
                Value::Array(
                    t.orders
                        .iter()
                        .filter(|o| status.is_none_or(|s| o["status"] == s))
                        .cloned()
                        .collect(),
                )
            }
            "orders.summary" => summary(&t.orders),
            "webhook.process" => process_event(&mut t, op)?,
            "appointments.insert" => {
                let a = json!({
                    "id": format!("apt_{:06}", t.appointments.len() + 1),
                    "customer": str_arg("customer"),
                    "slot": str_arg("slot"),
                });
                t.appointments.push(a.clone());
                a
            }
            "appointments.list" => Value::Array(t.appointments.clone()),
            other => return Err(format!("unknown op {other:?}")),
        })
    }
}

fn summary(orders: &[Value]) -> Value {
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_intent: BTreeMap<String, u64> = BTreeMap::new();
    for o in orders {
        *by_status
            .entry(o["status"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
        *per_intent
            .entry(o["paymentIntentId"].as_str().unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    let duplicates: Vec<&String> = per_intent
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    json!({"total": orders.len(), "byStatus": by_status, "duplicateIntents": duplicates})
}

/// A Stripe event: with `dedupe`, an event id seen before changes nothing (the
/// idempotent handler); the order of the intent moves to PAID or FAILED. Without
/// `dedupe` (the fragile handler), each delivery of a success inserts an order record.
fn process_event(t: &mut Tables, op: &Value) -> Result<Value, String> {
    let event_id = op
        .get("eventId")
        .and_then(Value::as_str)
        .ok_or("eventId missing")?;
    let kind = op.get("type").and_then(Value::as_str).unwrap_or_default();
    let intent = op
        .get("paymentIntentId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let dedupe = op.get("dedupe").and_then(Value::as_bool).unwrap_or(true);
    if dedupe && !t.events.insert(event_id.to_owned()) {
        return Ok(json!({"duplicate": true, "matched": true}));
    }
    let status = match kind {
        "payment_intent.succeeded" => "PAID",
        "payment_intent.payment_failed" => "FAILED",
        _ => return Ok(json!({"duplicate": false, "matched": false})),
    };
    if !dedupe && status == "PAID" {
        let id = format!("ord_{:06}", t.orders.len() + 1);
        t.orders
            .push(json!({"id": id, "paymentIntentId": intent, "status": "PAID"}));
        return Ok(json!({"duplicate": false, "matched": true, "orderId": id}));
    }
    match t.orders.iter_mut().find(|o| o["paymentIntentId"] == intent) {
        Some(order) => {
            order["status"] = json!(status);
            Ok(json!({"duplicate": false, "matched": true, "orderId": order["id"].clone()}))
        }
        None => Ok(json!({"duplicate": false, "matched": false})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str, intent: &str, dedupe: bool) -> Value {
        json!({"op": "webhook.process", "eventId": id, "type": "payment_intent.succeeded",
               "paymentIntentId": intent, "dedupe": dedupe})
    }

    #[test]
    fn idempotent_processing_ignores_a_redelivered_event() {
        let db = Database::default();
        db.run(
            &json!({"op": "orders.insert", "paymentIntentId": "pi_1", "status": "PENDING_PAYMENT"}),
        )
        .unwrap();
        assert_eq!(
            db.run(&event("evt_1", "pi_1", true)).unwrap()["duplicate"],
            false
        );
        assert_eq!(
            db.run(&event("evt_1", "pi_1", true)).unwrap()["duplicate"],
            true
        );
        let s = db.run(&json!({"op": "orders.summary"})).unwrap();
        assert_eq!(s["byStatus"]["PAID"], 1);
        assert_eq!(s["duplicateIntents"], json!([]));
    }

    #[test]
    fn the_fragile_handler_duplicates_orders() {
        let db = Database::default();
        db.run(
            &json!({"op": "orders.insert", "paymentIntentId": "pi_1", "status": "PENDING_PAYMENT"}),
        )
        .unwrap();
        db.run(&event("evt_1", "pi_1", false)).unwrap();
        db.run(&event("evt_1", "pi_1", false)).unwrap();
        let s = db.run(&json!({"op": "orders.summary"})).unwrap();
        assert_eq!(s["duplicateIntents"], json!(["pi_1"]));
        let pending = db
            .run(&json!({"op": "orders.list", "status": "PENDING_PAYMENT"}))
            .unwrap();
        assert_eq!(
            pending.as_array().unwrap().len(),
            1,
            "the original order is left pending"
        );
    }
}
