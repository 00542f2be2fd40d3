//! Unit tests of the request schedule: what waits, what goes, in how many pieces.
use std::time::Duration;

use super::*;
use crate::model::Direction;
use crate::queue::Payload;

fn schedule(hold_ms: u64) -> RequestSchedule {
    let delays = Delays {
        rules: Arc::new(HttpRules {
            endpoints: vec!["/held".into()],
            methods: vec![],
        }),
        model: LatencyModel {
            latency: Duration::from_millis(hold_ms),
            jitter: Duration::ZERO,
            probability: 100.0,
            direction: Direction::Upstream,
        },
        header_timeout: Duration::from_secs(60),
    };
    let stats = Arc::new(Stats::default());
    RequestSchedule::new(delays, 1 << 20, Rng::new(1), Arc::default(), stats)
}

fn text(item: Item) -> (String, bool) {
    match item.payload {
        Payload::Data(bytes) => (
            String::from_utf8_lossy(&bytes).into_owned(),
            item.record.is_some(),
        ),
        Payload::End(end) => (format!("{end:?}"), false),
    }
}

#[test]
fn a_matching_request_waits_whole_and_the_others_go_at_once_in_one_piece() {
    let mut schedule = schedule(400);
    let mut queue = Queue::default();
    let now = Instant::now();
    let input = "GET /a HTTP/1.1\r\n\r\nPOST /held HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    schedule.data(Bytes::from(input), now, &mut queue);
    let first = queue.pop_due(now).map(text);
    assert_eq!(first, Some(("GET /a HTTP/1.1\r\n\r\n".to_owned(), false)));
    assert!(
        queue.pop_due(now + Duration::from_millis(399)).is_none(),
        "released early"
    );
    let held = queue.pop_due(now + Duration::from_millis(400)).map(text);
    let expected = "POST /held HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc".to_owned();
    assert_eq!(
        held,
        Some((expected, true)),
        "head and body in one piece, its hold recorded"
    );
}

#[test]
fn a_head_read_in_pieces_is_held_from_its_first_byte() {
    let mut schedule = schedule(400);
    let mut queue = Queue::default();
    let start = Instant::now();
    schedule.data(Bytes::from("POST /he"), start, &mut queue);
    assert!(
        queue.pop_due(start + Duration::from_secs(3600)).is_none(),
        "pending until decided"
    );
    let later = start + Duration::from_millis(100);
    schedule.data(Bytes::from("ld HTTP/1.1\r\n\r\n"), later, &mut queue);
    assert!(queue.pop_due(start + Duration::from_millis(399)).is_none());
    let due = start + Duration::from_millis(400);
    assert_eq!(
        queue.pop_due(due).map(text),
        Some(("POST /he".to_owned(), true))
    );
    assert_eq!(
        queue.pop_due(due).map(text),
        Some(("ld HTTP/1.1\r\n\r\n".to_owned(), false))
    );
}
