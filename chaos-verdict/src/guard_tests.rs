use super::*;

const S: GuardSettings = GuardSettings {
    error_rate_percent: 10.0,
    window_seconds: 10,
    min_samples: 20,
    breaches: 3,
};

/// `per_second[i]` = (requests, failures) in second 100 + i.
fn state(per_second: &[(u64, u64)]) -> GuardState {
    let mut st = GuardState::default();
    for (i, (n, f)) in per_second.iter().enumerate() {
        st.seconds.insert(100 + i as i64, [*n, *f]);
    }
    st
}

fn at(second: i64) -> Millis {
    second * 1000 + 300
}

#[test]
fn a_full_outage_trips_after_the_consecutive_breaches() {
    // 10 req/s healthy for 10 s, then every request fails.
    let mut seconds: Vec<(u64, u64)> = vec![(10, 0); 10];
    seconds.extend(vec![(10, 10); 10]);
    let mut st = state(&seconds);
    let mut statuses = Vec::new();
    for now in 111..=116 {
        statuses.push(st.evaluate(at(now), &S).guard);
    }
    // Windows end at 110 (1 bad second: excluded as the worst), 111 (2 bad: breach), ...
    assert_eq!(
        statuses,
        vec![
            Status::Ok,
            Status::Breach,
            Status::Breach,
            Status::Trip,
            Status::Trip,
            Status::Trip
        ]
    );
    assert_eq!(st.breach_started_at, Some(at(112)));
    assert_eq!(st.tripped_at, Some(at(114)));
}

#[test]
fn one_bad_second_of_fast_failures_never_trips() {
    // 10 req/s, then one second with 500 fast failures, then healthy again.
    let mut seconds: Vec<(u64, u64)> = vec![(10, 0); 10];
    seconds.push((500, 500));
    seconds.extend(vec![(10, 0); 15]);
    let mut st = state(&seconds);
    for now in 111..=126 {
        let e = st.evaluate(at(now), &S);
        assert_ne!(e.guard, Status::Breach, "at {now}: {}", e.reason);
        assert_ne!(e.guard, Status::Trip);
    }
}

#[test]
fn one_bad_second_on_little_traffic_never_trips() {
    // 3 requests a second: a window of about 30, just above the minimum of 20, so every
    // window is judged. The bad second alone puts each window that holds it above 10%;
    // without its worst second, none is. Two shapes of one bad second: within one clock
    // second (its 3 requests and a retry fail), and straddling two (4 of 6 fail).
    let shapes: [&[(u64, u64)]; 2] = [&[(4, 4)], &[(3, 2), (3, 2)]];
    for bad in shapes {
        let mut seconds: Vec<(u64, u64)> = vec![(3, 0); 10];
        seconds.extend_from_slice(bad);
        seconds.extend(vec![(3, 0); 12]);
        let mut st = state(&seconds);
        let mut above = 0;
        for now in 111..=124 {
            let e = st.evaluate(at(now), &S);
            assert_eq!(e.guard, Status::Ok, "{bad:?} at {now}: {}", e.reason);
            if e.error_rate_percent.unwrap() > 10.0 {
                above += 1;
            }
        }
        assert!(
            above >= 9,
            "{bad:?}: the bad second was above 10% in {above} windows"
        );
        assert_eq!((st.streak, st.tripped_at), (0, None));
    }
}

#[test]
fn little_traffic_is_not_judged() {
    let mut st = state(&[(1, 1); 15]);
    for now in 111..=116 {
        let e = st.evaluate(at(now), &S);
        assert_eq!(e.guard, Status::Insufficient, "{}", e.reason);
    }
    assert_eq!(st.tripped_at, None);
}

#[test]
fn a_recovering_window_resets_the_streak() {
    let mut seconds: Vec<(u64, u64)> = vec![(10, 0); 10];
    seconds.extend([(10, 10), (10, 10), (10, 10), (100, 0), (100, 0)]);
    let mut st = state(&seconds);
    assert_eq!(st.evaluate(at(112), &S).guard, Status::Breach);
    assert_eq!(st.evaluate(at(113), &S).guard, Status::Breach);
    // 30 failures in 280 requests (10.7%), but 20 in 270 (7.4%) without the worst second.
    let e = st.evaluate(at(115), &S);
    assert_eq!(e.guard, Status::Ok, "{}", e.reason);
    assert_eq!((st.streak, st.breach_started_at), (0, None));
}

#[test]
fn two_calls_in_the_same_second_count_once() {
    let mut seconds: Vec<(u64, u64)> = vec![(10, 0); 10];
    seconds.extend(vec![(10, 10); 10]);
    let mut st = state(&seconds);
    for _ in 0..5 {
        st.evaluate(at(112), &S);
    }
    assert_eq!(st.streak, 1);
    assert_eq!(st.tripped_at, None);
}

#[test]
fn ingest_follows_a_growing_file_and_refuses_a_replaced_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("points.ndjson");
    let line = |t: &str, status: u16| {
        format!(
            r#"{{"metric":"http_req_duration","type":"Point","data":{{"time":"{t}","value":1,"tags":{{"status":"{status}"}}}}}}"#
        ) + "\n"
    };
    std::fs::write(&path, line("2026-11-28T07:00:01.5Z", 200)).unwrap();
    let mut st = GuardState::default();
    st.ingest(&path).unwrap();
    let mut more = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut more, line("2026-11-28T07:00:01.7Z", 500).as_bytes()).unwrap();
    st.ingest(&path).unwrap();
    let second = time::parse("2026-11-28T07:00:01Z").unwrap() / 1000;
    assert_eq!(st.seconds.get(&second), Some(&[2, 1]));
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, "").unwrap();
    let err = st.ingest(&path).unwrap_err().to_string();
    assert!(err.contains("replaced or truncated"), "{err}");
}

#[test]
fn the_state_survives_a_save_and_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guard.json");
    let mut st = state(&[(10, 1)]);
    st.streak = 2;
    st.save(&path).unwrap();
    assert_eq!(GuardState::load(&path).unwrap(), st);
    assert_eq!(
        GuardState::load(&dir.path().join("none.json")).unwrap(),
        GuardState::default()
    );
    std::fs::write(&path, "nope").unwrap();
    assert!(
        GuardState::load(&path)
            .unwrap_err()
            .to_string()
            .contains("remove it")
    );
}
